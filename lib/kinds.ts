/**
 * The allocator designs heaplab holds, one list for every layer: the Node API,
 * the ports, the preload libraries, the bench and the CLI. The C side has its
 * own table (native/registry.c, `binding.allocators` lists what was built); a
 * test checks that the two name the same designs.
 */
export type AllocatorKind = 'tlsf' | 'dlmalloc' | 'liballoc';
export const allocatorKinds: readonly AllocatorKind[] = ['tlsf', 'dlmalloc', 'liballoc'];

export function isAllocatorKind(name: unknown): name is AllocatorKind {
  return typeof name === 'string' && (allocatorKinds as readonly string[]).includes(name);
}
