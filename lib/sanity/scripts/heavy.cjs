'use strict';
const crypto = require('node:crypto');
const zlib = require('node:zlib');
const n = Number(process.argv[2]);
const items = [];
for (let i = 0; i < n; i++) {
  items.push({ id: i, name: 'item-' + i, tags: [i % 7, i % 11, 't' + (i % 13)], nested: { a: i * 1.5, b: String(i).repeat(1 + (i % 5)) } });
}
const text = JSON.stringify(items);
const back = JSON.parse(text);
const again = JSON.stringify(back);
if (again !== text) throw new Error('JSON round trip changed the text');
const hash = crypto.createHash('sha256').update(again);
const keep = [];
let bytes = 0;
for (let i = 0; i < n; i++) {
  const b = Buffer.alloc(16 + ((i * 7919) % 20000), i & 255);
  bytes += b.length;
  keep.push(b);
  if (keep.length > 3000) {
    for (const old of keep.splice(0, 1500)) hash.update(old.subarray(0, 64));
  }
}
for (const b of keep) hash.update(b);
const packed = zlib.gzipSync(Buffer.from(text), { level: 6 });
const unpacked = zlib.gunzipSync(packed).toString();
if (unpacked !== text) throw new Error('gzip round trip changed the text');
console.log(items.length, text.length, bytes, hash.digest('hex'));
