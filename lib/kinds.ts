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

/**
 * A design, or the same design behind the thread cache (native/cache/): the
 * names the preload libraries, the bench and the CLI take. The plain design is
 * what the ports mirror (`heaplab compare`).
 */
export type AllocatorName = AllocatorKind | `${AllocatorKind}+cache`;
export const allocatorNames: readonly AllocatorName[] = allocatorKinds.flatMap((k) => [k, `${k}+cache` as const]);

export function isAllocatorName(name: unknown): name is AllocatorName {
  return typeof name === 'string' && (allocatorNames as readonly string[]).includes(name);
}

/** The design behind a name: 'tlsf+cache' -> 'tlsf'. */
export function designOf(name: AllocatorName): AllocatorKind {
  return name.replace(/\+cache$/, '') as AllocatorKind;
}
