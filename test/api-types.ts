// A type test: compiled by `npm run typecheck` (part of `npm test`), never run.
// It pins the public types: what must compile does, and each line below that
// must not compile carries an expect-error directive (which itself fails the
// build if the line ever compiles).
import {
  createHeap,
  HeapCorruptionError,
  type AllocatorKind,
  type Heap,
  type HeaplabErrorCode,
  type HeapStats,
  type PortHeap,
} from '../lib/index.js';
import type { NativeHeap, NativeStats } from '../binding.js';

const native: Heap<Buffer> = createHeap('tlsf', { limit: 1 << 20, pageSize: 4096, pages: 'arena' });
const port: PortHeap = createHeap('dlmalloc', { engine: 'ts' });
const buf: Buffer = native.alloc(10, { align: 64, zero: true });
const view: Uint8Array = port.alloc(10);
const offset: number = port.offsetOf(view);
const moved: Buffer = native.realloc(buf, 20);
const stats: HeapStats = native.stats();
const same: NativeStats = stats;
const kinds: AllocatorKind[] = ['tlsf', 'dlmalloc', 'liballoc'];
const code: HeaplabErrorCode = new HeapCorruptionError('x', []).code;
native.free(moved);
native.destroy();
void [offset, same, kinds, code, view];

// @ts-expect-error: not an allocator
createHeap('jemalloc');
// @ts-expect-error: sizes are numbers
native.alloc('8');
// @ts-expect-error: unknown option
native.alloc(8, { colour: 'red' });
// @ts-expect-error: the ts engine's blocks are views, not Buffers
const notBuffer: Buffer = port.alloc(8);
// @ts-expect-error: pages is 'mmap' | 'arena'
createHeap('tlsf', { pages: 'sbrk' });
// @ts-expect-error: the native class needs its arguments
new (null as unknown as typeof NativeHeap)();
void notBuffer;
