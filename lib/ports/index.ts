/** The TypeScript ports, by allocator name. */
import type { AllocatorKind } from '../kinds.js';
import type { PortFactory } from './types.js';
import { createDlmalloc } from './dlmalloc.js';
import { createLiballoc } from './liballoc.js';
import { createTlsf } from './tlsf.js';

export const portFactories: Partial<Record<AllocatorKind, PortFactory>> = {
  dlmalloc: createDlmalloc,
  liballoc: createLiballoc,
  tlsf: createTlsf,
};
