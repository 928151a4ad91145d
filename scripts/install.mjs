#!/usr/bin/env node
// install.mjs — `npm install` hook: use a prebuilt addon when one fits this
// platform and Node-API version, else build from source with cmake-js. A bare
// `node-gyp-build || cmake-js compile` would let npm's node-gyp fail noisily first.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const force = process.env.HEAPLAB_BUILD_FROM_SOURCE === '1';

function prebuildFits() {
  const dir = join(root, 'prebuilds', `${process.platform}-${process.arch}`);
  if (force || !existsSync(dir)) return false;
  try {
    const load = require('node-gyp-build');
    load(root);
    // The preload libraries travel beside the addon in the prebuild.
    return readdirSync(dir).some((f) => f.startsWith('libheaplab-'));
  } catch {
    return false;
  }
}

if (prebuildFits()) {
  console.log('heaplab: using the prebuilt addon for', `${process.platform}-${process.arch}`);
  process.exit(0);
}

// Installed as a dependency, only what a user runs is built: the addon and the
// preload libraries, not the C test drivers and their sanitizer libraries.
const asDependency = root.split(/[\\/]/).includes('node_modules');
console.log('heaplab: no prebuild fits; building from source with cmake-js (needs cmake, gcc, g++, make)');
const cmakeJs = join(dirname(require.resolve('cmake-js/package.json')), 'bin', 'cmake-js');
const args = [cmakeJs, 'compile', '--out', 'build', `--CDHEAPLAB_TESTS=${asDependency ? 'OFF' : 'ON'}`];
const result = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
if (result.status !== 0) {
  console.error('heaplab: the source build failed (its output is above). It needs cmake >= 3.16, gcc, g++ and make');
  console.error('(Debian: apt-get install cmake g++ make); install them and run npm install again.');
  console.error('npm install --foreground-scripts shows the whole build as it runs.');
  process.exit(result.status ?? 1);
}
