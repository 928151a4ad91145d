/**
 * The kernel's traces (kernel/kernel.c reads them; boot.S includes the file):
 * "HLKTRACE", a u32 count, then per trace a 56-byte header (name[32], limit u64,
 * ops u64, maxId u32, pad u32) and its 16-byte records (op u8, alignLog2 u8,
 * pad u16, id u32, size u64), little-endian. And the digest both sides print
 * of a replay: FNV-1a 64 over every operation's result offset as an int64
 * (the block's offset, -1 for a failure, 0 for a free).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import type { Trace } from '../trace/trace.js';

const MAGIC = 'HLKTRACE';
const HEADER = 56;
const RECORD = 16;

export function writeKernelBlob(path: string, traces: Trace[]): void {
  const bytes = 12 + traces.reduce((n, t) => n + HEADER + t.op.length * RECORD, 0);
  const buf = Buffer.alloc(bytes);
  buf.write(MAGIC, 0, 'latin1');
  buf.writeUInt32LE(traces.length, 8);
  let at = 12;
  for (const t of traces) {
    buf.write(t.name.slice(0, 31), at, 'latin1');
    buf.writeBigUInt64LE(BigInt(t.limit), at + 32);
    buf.writeBigUInt64LE(BigInt(t.op.length), at + 40);
    buf.writeUInt32LE(t.maxId, at + 48);
    at += HEADER;
    for (let i = 0; i < t.op.length; i++) {
      buf.writeUInt8(t.op[i]!, at);
      buf.writeUInt8(t.alignLog2[i]!, at + 1);
      buf.writeUInt32LE(t.id[i]!, at + 4);
      buf.writeBigUInt64LE(BigInt(t.size[i]!), at + 8);
      at += RECORD;
    }
  }
  writeFileSync(path, buf);
}

export function readKernelBlob(path: string): Trace[] {
  const buf = readFileSync(path);
  if (buf.toString('latin1', 0, 8) !== MAGIC) throw new Error(`${path}: not a kernel trace blob`);
  const count = buf.readUInt32LE(8);
  const out: Trace[] = [];
  let at = 12;
  for (let k = 0; k < count; k++) {
    const name = buf.toString('latin1', at, at + 32).replace(/\0.*$/s, '');
    const limit = Number(buf.readBigUInt64LE(at + 32));
    const n = Number(buf.readBigUInt64LE(at + 40));
    const maxId = buf.readUInt32LE(at + 48);
    at += HEADER;
    const op = new Uint8Array(n);
    const alignLog2 = new Uint8Array(n);
    const id = new Uint32Array(n);
    const size = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      op[i] = buf.readUInt8(at);
      alignLog2[i] = buf.readUInt8(at + 1);
      id[i] = buf.readUInt32LE(at + 4);
      size[i] = Number(buf.readBigUInt64LE(at + 8));
      at += RECORD;
    }
    out.push({ name, op, id, size, alignLog2, maxId, limit });
  }
  return out;
}

/** FNV-1a 64 over each result offset as an int64, in hex: what the kernel prints as digest=. */
export function offsetsDigest(offsets: Float64Array): string {
  const mask = (1n << 64n) - 1n;
  let h = 0xcbf29ce484222325n;
  for (const v of offsets) {
    let x = BigInt.asUintN(64, BigInt(v));
    for (let i = 0; i < 8; i++) {
      h ^= x & 0xffn;
      h = (h * 0x100000001b3n) & mask;
      x >>= 8n;
    }
  }
  return h.toString(16).padStart(16, '0');
}
