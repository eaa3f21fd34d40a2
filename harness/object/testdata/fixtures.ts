/**
 * Test support for the object-model tests: builds the C fixtures of this directory with clang-19
 * into a temporary directory, and asks libbpf itself (the oracle binary, linked against libbpf 1.7)
 * what it made of an object at open time, from its debug log.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { ensureCoreOracle } from '../../test-support/libbpf-oracle.js';

const here = import.meta.dirname;
let dir: string | undefined;

function workDir(): string {
  dir ??= mkdtempSync(join(tmpdir(), 'corematrix-object-'));
  return dir;
}

/** Removes the temporary directory (call from afterAll). */
export function cleanFixtures(): void {
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
}

export interface BuiltFixture {
  path: string;
  bytes: Uint8Array;
}

const built = new Map<string, BuiltFixture>();

/**
 * Compiles testdata/<name>.bpf.c (or `source` when given) with `clang-19 -g -O2 -target bpf`.
 * `outName` names the object (libbpf names the object, and so the data maps, after the file).
 */
export function buildFixture(
  name: string,
  options: { defines?: string[]; target?: 'bpf' | 'bpfel' | 'bpfeb'; source?: string; outName?: string } = {},
): BuiltFixture {
  const target = options.target ?? 'bpf';
  const defines = options.defines ?? [];
  const outName = options.outName ?? `${name}${defines.map((d) => `-${d}`).join('')}-${target}`;
  const cached = built.get(outName);
  if (cached !== undefined) return cached;
  let src = join(here, `${name}.bpf.c`);
  if (options.source !== undefined) {
    src = join(workDir(), `${outName}.c`);
    writeFileSync(src, options.source);
  }
  const out = join(workDir(), `${outName}.o`);
  execFileSync(
    'clang-19',
    ['-g', '-O2', '-target', target, '-Werror', ...defines.map((d) => `-D${d}`), '-c', src, '-o', out],
    { stdio: 'pipe' },
  );
  const result = { path: out, bytes: new Uint8Array(readFileSync(out)) };
  built.set(outName, result);
  return result;
}

/** libbpf's debug log lines (without "libbpf: ") and its final verdict, for opening `object`. */
export interface LibbpfOpenLog {
  lines: string[];
  /** 0, or -errno when the open (or the later prepare) failed. */
  result: number;
  /** 'open' when bpf_object__open itself failed. */
  stage: string | undefined;
  /** libbpf's last warning when it failed. */
  error: string | undefined;
}

/**
 * Runs the oracle with --verbose on `object` and returns libbpf's log. The target BTF does not
 * matter for what is checked here (open-time facts): the host's when present, else the object's own.
 * Fixtures given to it must not pin maps (prepare would create and pin them).
 */
export async function libbpfOpenLog(object: string): Promise<LibbpfOpenLog> {
  const bin = await ensureCoreOracle();
  const target = existsSync('/sys/kernel/btf/vmlinux') ? '/sys/kernel/btf/vmlinux' : object;
  const r = await execa(bin, [object, target, '--verbose'], { reject: false, stdin: 'ignore' });
  const lines = r.stderr
    .split('\n')
    .filter((l) => l.startsWith('libbpf: '))
    .map((l) => l.slice('libbpf: '.length));
  const last = r.stdout.trim().split('\n').pop() ?? '{}';
  const done = JSON.parse(last) as { prepare?: number; stage?: string; error?: string };
  return { lines, result: done.prepare ?? 0, stage: done.stage, error: done.error };
}

/** errno numbers (Linux) and libbpf's own codes, to compare libbpf's -errno with ours. */
export const ERRNO: Record<string, number> = {
  ENOENT: 2,
  ESRCH: 3,
  E2BIG: 7,
  EINVAL: 22,
  ENOTSUP: 95,
  EOPNOTSUPP: 95,
  LIBBPF_ERRNO__FORMAT: 4001,
  LIBBPF_ERRNO__RELOC: 4005,
};
