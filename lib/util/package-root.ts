/** The package's root directory: lib/ (sources) and dist/ (built) both sit one level below it, this file two. */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const packageRoot: string = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
