/**
 * Runs once before the test files: fetches the default Debian kernels into the cache (about a
 * minute on an empty cache, nothing after that) and builds the case suite. Tests that cover
 * "every kernel BTF in kernels/" would otherwise depend on which test happened to fetch first, and
 * on a fresh checkout silently cover only the host.
 */
import { join } from 'node:path';
import { execa } from 'execa';
import { defaultDebianKernels } from './kernels.js';

export default async function setup(): Promise<void> {
  const repo = join(import.meta.dirname, '..', '..');
  await Promise.all([
    defaultDebianKernels(),
    execa('bash', [join(repo, 'scripts', 'build-cases.sh')], {
      stdin: 'ignore',
      stdout: 'inherit',
      stderr: 'inherit',
    }),
  ]);
}
