/**
 * The peers: the allocators people already use, which heaplab runs beside its
 * own when their Debian packages are installed (`npm run bench:peers`). `heaplab
 * bench` loads them in C (native/bench/bench.c, open_peer); `heaplab churn`
 * preloads them into its harness. Both look in the same places: the
 * environment variable, then these directories.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export const peerNames = ['jemalloc', 'mimalloc', 'tcmalloc'] as const;
export type PeerName = (typeof peerNames)[number];

/** Debian packages of the peers (`npm run bench:peers` installs them). */
export const peerPackages: Record<PeerName, string> = {
  jemalloc: 'libjemalloc2',
  mimalloc: 'libmimalloc2.0',
  tcmalloc: 'libtcmalloc-minimal4',
};

/** Each peer's variable naming another build of its library, and the file Debian installs. */
export const peerLibraries: Record<PeerName, { env: string; file: string }> = {
  jemalloc: { env: 'HEAPLAB_JEMALLOC', file: 'libjemalloc.so.2' },
  mimalloc: { env: 'HEAPLAB_MIMALLOC', file: 'libmimalloc.so.2' },
  tcmalloc: { env: 'HEAPLAB_TCMALLOC', file: 'libtcmalloc_minimal.so.4' },
};

/** Where a peer's file is looked for, in order (as native/bench/bench.c's debian_dirs). */
export const peerDirs = ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib', '/usr/local/lib'];

/** The peer's library, or why there is none ("not installed (tried ...)"). */
export function findPeerLibrary(name: PeerName, env: NodeJS.ProcessEnv = process.env): { path: string } | { reason: string } {
  const { env: variable, file } = peerLibraries[name];
  const given = env[variable];
  if (given) return existsSync(given) ? { path: given } : { reason: `${variable}=${given}: no such file` };
  const tried = peerDirs.map((dir) => join(dir, file));
  const path = tried.find((p) => existsSync(p));
  return path ? { path } : { reason: `not installed (tried ${tried.join(', ')}; set ${variable}=PATH)` };
}
