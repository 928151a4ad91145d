/**
 * One concept, one home: where C and TypeScript both need a concept, the
 * TypeScript side mirrors the C and this suite fails the moment they disagree.
 * And lib/ imports form no loop (type imports included).
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { binding } from '../lib/addon/native.js';
import { Status } from '../lib/errors.js';
import { allocatorKinds } from '../lib/kinds.js';
import { Op, opNames } from '../lib/trace/trace.js';
import { repoRoot } from './util.js';

describe('single homes', () => {
  it('the trace op codes are native/trace/trace.h\'s enum hl_trace_op', () => {
    expect({ ...Op }).toEqual({ ...binding.traceOps });
    for (const [name, code] of Object.entries(Op)) expect(opNames[code]).toBe(name);
  });

  it("the addon's status codes are lib/errors.ts's Status", () => {
    expect({ ...Status }).toEqual({ ...binding.statuses });
  });

  it('the allocator kinds are the designs the C registry builds', () => {
    expect([...binding.allocators].sort()).toEqual([...allocatorKinds].sort());
  });
});

/** Every relative import of every .ts file under lib/, as absolute .ts paths. */
function importGraph(dir: string): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const path = join(d, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (name.endsWith('.ts')) {
        const text = readFileSync(path, 'utf8');
        const deps = [...text.matchAll(/(?:from|import)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g)]
          .map((m) => normalize(join(dirname(path), m[1]!)).replace(/\.js$/, '.ts'))
          .filter((p) => p.startsWith(dir));
        graph.set(path, deps);
      }
    }
  };
  walk(dir);
  return graph;
}

describe('lib/ layout', () => {
  it('has no import loop', () => {
    const lib = join(repoRoot, 'lib');
    const graph = importGraph(lib);
    const state = new Map<string, 'open' | 'done'>();
    const loops: string[] = [];
    const stack: string[] = [];
    const visit = (u: string): void => {
      state.set(u, 'open');
      stack.push(u);
      for (const v of graph.get(u) ?? []) {
        if (state.get(v) === 'open') loops.push([...stack.slice(stack.indexOf(v)), v].map((p) => relative(lib, p)).join(' -> '));
        else if (!state.has(v)) visit(v);
      }
      stack.pop();
      state.set(u, 'done');
    };
    for (const u of graph.keys()) if (!state.has(u)) visit(u);
    expect(graph.size).toBeGreaterThan(20);
    expect(loops).toEqual([]);
  });
});
