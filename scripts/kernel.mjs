#!/usr/bin/env node
// kernel.mjs — builds kernel/ (and, with --boot, boots it under QEMU).
//
//   node scripts/kernel.mjs [--boot] [--broken]
//
// 1. the traces: heaplab's seeded traces and one recorded now (sort, under the
//    tlsf preload library), into build/kernel/traces.bin (lib/kernel/blob.ts);
// 2. vendor/ and native/ops_*.c freestanding, kernel.c and boot.S, linked at
//    1 MiB and turned into a 32-bit ELF, which QEMU's -kernel loads through
//    multiboot: build/kernel/heaplab-kernel.elf (and heaplab-kernel-broken.elf,
//    whose page-frame allocator hands a run out twice);
// 3. --boot: qemu-system-x86_64 (TCG; KVM with HEAPLAB_KVM=1), the
//    serial line on stdout; exits with the kernel's status (0: every checker clean).
import { spawnSync } from 'node:child_process';
import { accessSync, constants, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'build', 'kernel');
const args = process.argv.slice(2);

function run(cmd, argv, opts = {}) {
  const r = spawnSync(cmd, argv, { stdio: 'inherit', ...opts });
  if (r.status !== 0) {
    console.error(`heaplab kernel: ${cmd} ${argv.join(' ')} failed`);
    process.exit(1);
  }
  return r;
}

/** kernel/freestanding.flags (CMake's heaplab_vendor_freestanding uses them too), the compiler's own headers, warnings as errors. */
const cflags = (cc) => {
  const include = spawnSync(cc, ['-print-file-name=include'], { encoding: 'utf8' }).stdout.trim();
  const flags = readFileSync(join(root, 'kernel', 'freestanding.flags'), 'utf8').trim().split(/\s+/);
  return [...flags, '-isystem', include, '-Wall', '-Wextra', '-Werror'];
};

async function traces() {
  const { defaultTraces } = await import(join(root, 'dist', 'trace', 'workloads.js'));
  const { readTrace } = await import(join(root, 'dist', 'trace', 'file.js'));
  const list = defaultTraces(1);
  // a small recorded trace: sort over lines it cannot predict
  const input = join(out, 'sort-input.txt');
  writeFileSync(input, Array.from({ length: 4000 }, (_, i) => `line ${(i * 7919) % 4001} ${'x'.repeat(i % 97)}`).join('\n'));
  const file = join(out, 'recorded.trace');
  const rec = spawnSync(process.execPath, [join(root, 'dist', 'cli.js'), 'trace', '--allocator', 'tlsf', '--out', file, '--', 'sort', input], { stdio: ['ignore', 'ignore', 'pipe'] });
  if (rec.status === 0) {
    const t = readTrace(file);
    list.push({ ...t, name: 'recorded-sort', limit: 0 });
  } else {
    console.error('heaplab kernel: could not record sort (is the tlsf preload library built?); the kernel runs the seeded traces only');
  }
  // HEAPLAB_KERNEL_TRACES=a,b: only these (to look at one trace)
  const only = process.env.HEAPLAB_KERNEL_TRACES?.split(',').filter(Boolean);
  return only ? list.filter((t) => only.includes(t.name)) : list;
}

export async function build() {
  mkdirSync(out, { recursive: true });
  const { writeKernelBlob } = await import(join(root, 'dist', 'kernel', 'blob.js'));
  const list = await traces();
  const blob = join(out, 'traces.bin');
  writeKernelBlob(blob, list);
  const cc = process.env.CC || 'gcc';
  const flags = cflags(cc);
  const sources = ['vendor/tlsf/tlsf.c', 'vendor/dlmalloc/dlmalloc.c', 'vendor/liballoc/liballoc.c', 'native/ops_tlsf.c', 'native/ops_dlmalloc.c', 'native/ops_liballoc.c'];
  const objects = [];
  for (const src of sources) {
    const obj = join(out, src.replace(/[/.]/g, '_') + '.o');
    run(cc, [...flags, '-c', join(root, src), '-o', obj]);
    objects.push(obj);
  }
  const boot = join(out, 'boot.o');
  run(cc, ['-c', join(root, 'kernel', 'boot.S'), '-o', boot, `-DTRACE_BLOB="${blob}"`]);
  for (const [name, extra] of [['heaplab-kernel', []], ['heaplab-kernel-broken', ['-DHL_KERNEL_BROKEN_FRAMES']]]) {
    const kobj = join(out, `${name}.o`);
    run(cc, [...flags, ...extra, '-c', join(root, 'kernel', 'kernel.c'), '-o', kobj]);
    const elf64 = join(out, `${name}.elf64`);
    run('ld', ['-n', '--no-warn-rwx-segments', '-T', join(root, 'kernel', 'link.ld'), '-z', 'max-page-size=0x1000', '-o', elf64, boot, kobj, ...objects]);
    run('objcopy', ['-O', 'elf32-i386', elf64, join(out, `${name}.elf`)]);
  }
  return list.length;
}

/**
 * The QEMU command line that boots `elf`. TCG unless HEAPLAB_KVM=1 and /dev/kvm
 * is usable: on this project's CI machine (itself a VM) nested KVM ran the
 * big-block traces at about 80 ms per operation (each first touch of a guest page
 * is a nested exit), where TCG runs all 72 replays in 18 s.
 */
export function qemuArgs(elf) {
  let kvm = false;
  if (process.env.HEAPLAB_KVM === '1') {
    try {
      accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
      kvm = true;
    } catch {}
  }
  return [
    '-kernel', elf, '-m', '2304M', '-display', 'none', '-serial', 'stdio', '-monitor', 'none', '-no-reboot',
    '-device', 'isa-debug-exit,iobase=0xf4,iosize=0x04', ...(kvm ? ['-enable-kvm'] : []),
  ];
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();

async function main() {
const count = await build();
console.error(`heaplab kernel: built ${join(out, 'heaplab-kernel.elf')} with ${count} traces`);
if (args.includes('--boot')) {
  const elf = join(out, args.includes('--broken') ? 'heaplab-kernel-broken.elf' : 'heaplab-kernel.elf');
  const started = Date.now();
  const r = spawnSync('qemu-system-x86_64', qemuArgs(elf), { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.error) {
    console.error(`heaplab kernel: cannot run qemu-system-x86_64 (${r.error.message}); Debian: apt-get install qemu-system-x86`);
    process.exit(127);
  }
  // isa-debug-exit: QEMU's status is (kernel status << 1) | 1
  const status = r.status === null ? 1 : r.status >> 1;
  console.error(`heaplab kernel: QEMU exited after ${((Date.now() - started) / 1000).toFixed(1)} s; kernel status ${status}`);
  process.exit(status);
}
}
