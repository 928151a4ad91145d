#!/usr/bin/env node
// A node-gyp stand-in for prebuildify, which always runs node-gyp: `npm run
// prebuildify` passes this file as --node-gyp. prebuildify calls it as
// `node-gyp rebuild --target=... --devdir=...`; we build with cmake-js in a
// folder of its own (build-prebuild: without the C test drivers, and without
// touching build/'s cache, so `npm test` still builds them), copy the .node to
// build/Release (where prebuildify looks for it) and the preload libraries (and
// the churn harness, heaplab-churn) into
// prebuilds/PLATFORM-ARCH so a prebuilt install has them too.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const cmakeJs = join(dirname(require.resolve('cmake-js/package.json')), 'bin', 'cmake-js');
const run = spawnSync(process.execPath, [cmakeJs, 'rebuild', '--out', 'build-prebuild', '--CDHEAPLAB_TESTS=OFF'], { cwd: root, stdio: 'inherit' });
if (run.status !== 0) process.exit(run.status ?? 1);
const release = join(root, 'build-prebuild', 'Release');
const forPrebuildify = join(root, 'build', 'Release');
mkdirSync(forPrebuildify, { recursive: true });
for (const f of readdirSync(release)) if (f.endsWith('.node')) copyFileSync(join(release, f), join(forPrebuildify, f));
const dest = join(root, 'prebuilds', `${process.platform}-${process.arch}`);
mkdirSync(dest, { recursive: true });
for (const f of readdirSync(release)) if (/^libheaplab-.*\.so$/.test(f) || f === 'heaplab-churn') copyFileSync(join(release, f), join(dest, f));
