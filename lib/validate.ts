/** Argument checks with messages that name the parameter and what was received. */
import { InvalidAlignmentError, InvalidArgumentError, InvalidSizeError } from './errors.js';

/** Describes a received value for an error message, without dumping big objects. */
export function describe(value: unknown): string {
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value)}`;
  if (typeof value === 'bigint') return `the BigInt ${value}n`;
  if (typeof value === 'number') return Object.is(value, -0) ? '-0' : String(value);
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (Buffer.isBuffer(value)) return `a Buffer of ${value.length} bytes`;
  if (ArrayBuffer.isView(value)) return `a ${value.constructor.name} of ${value.byteLength} bytes`;
  if (typeof value === 'function') return 'a function';
  return `a ${(value as object).constructor?.name ?? 'object'}`;
}

/** The largest request heaplab passes to an allocator: 2**53 - 1 is where JS integers stop being exact. */
export const MAX_SIZE = Number.MAX_SAFE_INTEGER;
/** Alignments above this are refused: 1 GiB, far beyond any page or cache structure. */
export const MAX_ALIGNMENT = 2 ** 30;

export function checkSize(value: unknown, name = 'size'): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > MAX_SIZE) {
    throw new InvalidSizeError(`Expected a non-negative integer for ${name} but received ${describe(value)}`);
  }
  return value;
}

export function checkAlignment(value: unknown, name = 'align'): number {
  if (
    typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > MAX_ALIGNMENT ||
    (value & (value - 1)) !== 0
  ) {
    throw new InvalidAlignmentError(
      `Expected a power of two between 1 and ${MAX_ALIGNMENT} for ${name} but received ${describe(value)}`,
    );
  }
  return value;
}

export function checkOptions(value: unknown, name: string, allowed: readonly string[]): Record<string, unknown> {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidArgumentError(`Expected an options object for ${name} but received ${describe(value)}`);
  }
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) {
      throw new InvalidArgumentError(`Unknown option ${JSON.stringify(key)} for ${name}; known: ${allowed.join(', ')}`);
    }
  }
  return value as Record<string, unknown>;
}

export function checkByteCount(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > MAX_SIZE) {
    throw new InvalidArgumentError(`Expected a non-negative integer (bytes) for ${name} but received ${describe(value)}`);
  }
  return value;
}

/** An integer in [min, max]; `fallback` when undefined. `maxText` names max in the message. */
export function checkIntegerIn(value: unknown, name: string, min: number, max: number, fallback: number, maxText = String(max)): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidArgumentError(`Expected an integer from ${min} to ${maxText} for ${name} but received ${describe(value)}`);
  }
  return value;
}

export function checkBoolean(value: unknown, name: string): boolean {
  if (typeof value !== 'boolean') {
    throw new InvalidArgumentError(`Expected a boolean for ${name} but received ${describe(value)}`);
  }
  return value;
}
