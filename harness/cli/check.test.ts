// `corematrix check` as a user runs it: the built bin/corematrix.js in a process of its own (the test
// command builds first): the static tier over matrix kernels, exit codes, one-line errors, speed.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCorematrix } from '../test-support/cli.js';
import { defaultDebianKernels } from '../test-support/kernels.js';

const repo = join(import.meta.dirname, '..', '..');
const bin = join(repo, 'bin', 'corematrix.js');
const casesDir = join(repo, 'build', 'cases');
const minimal = join(casesDir, 'minimal.bpf.o');
const changes = join(casesDir, 'kernel_changes.bpf.o');
const ready = existsSync(minimal) && existsSync(changes) && existsSync(join(repo, 'dist'));
let dir: string;
let matrix: string;
let empty: string;

const corematrix = runCorematrix;

beforeAll(async () => {
  const kernels = await defaultDebianKernels();
  const bookworm = kernels.find((k) => k.name === 'debian-bookworm-6.1')!;
  dir = mkdtempSync(join(tmpdir(), 'corematrix-check-cli-'));
  writeFileSync(join(dir, 'not-an-object.o'), 'hello\n');
  matrix = join(dir, 'matrix.yaml');
  writeFileSync(
    matrix,
    [
      'kernels:',
      '  - name: bookworm-files',
      `    btf: ${bookworm.btf}`,
      `    config: ${bookworm.config}`,
      'cases: ["*.o"]',
      '',
    ].join('\n'),
  );
  // A cache with nothing in it: Debian kernels are not fetched there.
  empty = join(dir, 'empty-cache');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(!ready)('corematrix check', () => {
  it('usage: an unknown kernel, a kernel not fetched: exit 2, one line', async () => {
    const unknown = await corematrix('check', minimal, '--kernel', 'bookwrm');
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toMatch(
      /^corematrix: matrix\.yaml: no kernel named "bookwrm" \(did you mean bookworm\?\)[^\n]*\n$/,
    );
    const notFetched = await new Promise<{ status: number | null; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [bin, 'check', minimal, '--kernel', 'sid'], {
        cwd: repo,
        env: { ...process.env, COREMATRIX_CACHE: empty },
      });
      let stderr = '';
      child.stderr.on('data', (b: Buffer) => {
        stderr += b.toString();
      });
      child.on('close', (status) => resolve({ status, stderr }));
    });
    expect(notFetched.status).toBe(2);
    expect(notFetched.stderr).toMatch(
      /^corematrix: .*kernel sid .*not fetched: run `corematrix kernels fetch sid` first\n$/,
    );
  });

  it('bad input: an object that is not a BPF object exits 1, named in one line', async () => {
    const r = await corematrix('check', join(dir, 'not-an-object.o'), '--matrix', matrix);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^corematrix: .*not-an-object\.o: not a BPF object corematrix can read/);
    expect(r.stderr.split('\n')).toHaveLength(2);
  });

  it('predicts per kernel and program, with reasons: kernel_changes on bullseye and sid', async () => {
    const r = await corematrix('check', changes, minimal, '--kernel', 'bullseye', '--kernel', 'sid');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^static tier: bullseye \(5\.10\.[^)]*\), sid \(/);
    expect(r.stdout).toMatch(
      /log_write \(tp\/syscalls\/sys_enter_write\)\n {4}bullseye {2}loads\n {4}sid {7}loads/,
    );
    expect(r.stdout).toMatch(/\d+ program × kernel cells: \d+ load, \d+ rejected/);
    expect(r.stdout).toMatch(/unknown statically:\n {2}verifier limits/);

    const j = await corematrix('check', changes, '--kernel', 'bookworm', '--json');
    expect(j.status).toBe(0);
    const json = JSON.parse(j.stdout) as {
      kernels: { name: string }[];
      programs: { program: string; kernel: string; verdict: string; unknown: string[] }[];
    };
    expect(json.kernels.map((k) => k.name)).toEqual(['bookworm']);
    expect(json.programs.length).toBeGreaterThan(0);
    for (const p of json.programs) expect(['loads', 'rejected']).toContain(p.verdict);
  });

  it('local kernel files; all case objects × all default kernels, whole process, well under 2 s', async () => {
    const local = await corematrix('check', minimal, '--matrix', matrix);
    expect(local.status, local.stderr).toBe(0);
    expect(local.stdout).toMatch(/bookworm-files {2}loads/);

    const objects = readdirSync(casesDir)
      .filter((f) => f.endsWith('.o'))
      .map((f) => join(casesDir, f));
    const runs: number[] = [];
    let out = '';
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      const r = await corematrix('check', ...objects);
      runs.push(Math.round(performance.now() - t0));
      expect(r.status, r.stderr).toBe(0);
      out = r.stdout;
    }
    console.log(`corematrix check: ${objects.length} objects × default matrix, wall ${runs.join(', ')} ms`);
    console.log(out.split('\n').slice(-12).join('\n'));
    expect(Math.min(...runs)).toBeLessThan(2000);
  });
});
