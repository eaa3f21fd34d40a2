// `npm test`: runs vitest (arguments are passed on) and ends with the one summary line CI reads,
// "N passed, N failed" (", N skipped" when some were), taken from vitest's JSON report. The exit
// code is vitest's.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const report = join(repo, 'reports', 'tests', 'vitest.json');
rmSync(report, { force: true });

const vitest = spawnSync(
  process.execPath,
  [
    join(repo, 'node_modules', 'vitest', 'vitest.mjs'),
    'run',
    '--reporter=default',
    '--reporter=json',
    `--outputFile.json=${report}`,
    ...process.argv.slice(2),
  ],
  { cwd: repo, stdio: 'inherit' },
);
const exitCode = vitest.status ?? 1;

if (existsSync(report)) {
  const {
    numPassedTests,
    numFailedTests,
    numPendingTests = 0,
    numTodoTests = 0,
    testResults = [],
  } = JSON.parse(readFileSync(report, 'utf8'));
  const skipped = numPendingTests + numTodoTests;
  // A test file that fails before its tests run (an import or a beforeAll) has no failed test of
  // its own: count it as one, so the line never says "0 failed" for a failed run.
  const brokenFiles = testResults.filter(
    (file) => file.status === 'failed' && !file.assertionResults?.some((t) => t.status === 'failed'),
  ).length;
  const failed = numFailedTests + brokenFiles;
  console.log(`${numPassedTests} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ''}`);
} else {
  console.log(`test run ended without a report (vitest exit code ${exitCode})`);
}
process.exit(exitCode);
