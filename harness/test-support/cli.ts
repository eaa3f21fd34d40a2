/**
 * Runs the built CLI (bin/corematrix.js → dist/, which `npm test` builds first) as a user does, in
 * a process of its own, without blocking the test worker while a VM boots.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';

const repo = join(import.meta.dirname, '..', '..');
const bin = join(repo, 'bin', 'corematrix.js');

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function runCorematrix(...args: string[]): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd: repo });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => {
      stdout += b.toString();
    });
    child.stderr.on('data', (b: Buffer) => {
      stderr += b.toString();
    });
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}
