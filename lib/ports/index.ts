/** The TypeScript ports, by allocator name. */
import type { AllocatorKind } from '../heap.js';
import type { PortFactory } from './types.js';

export const portFactories: Partial<Record<AllocatorKind, PortFactory>> = {};
