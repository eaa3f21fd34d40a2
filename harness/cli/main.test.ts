import { type SpawnSyncReturns, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Btf } from '../btf/btf.js';
import { writeCHeader } from '../btf/dump-c.js';
import { writeRawDump } from '../btf/dump-raw.js';
import { summarizeBtf } from '../btf/summary.js';
import { main } from './main.js';
import { type Output, OutputClosed } from './output.js';

// These run the CLI as a user does: the built bin/corematrix.js (`npm test` builds first), in a
// process of its own, checking exit codes, stderr lines and stdout bytes.

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin = join(repo, 'bin', 'corematrix.js');
let dir: string;
let small: string;
let large: string;

/** A BPF object's BTF, as clang emits it, extracted to a raw BTF file. */
function compileBtf(name: string, source: string): string {
  const c = join(dir, `${name}.c`);
  const object = join(dir, `${name}.o`);
  const raw = join(dir, `${name}.btf`);
  writeFileSync(c, source);
  run('clang', ['-g', '-O2', '-target', 'bpf', '-c', c, '-o', object]);
  run('llvm-objcopy', ['--dump-section', `.BTF=${raw}`, object]);
  return raw;
}

function run(program: string, args: string[]): void {
  const result = spawnSync(program, args, { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`${program} ${args.join(' ')} failed: ${result.stderr}`);
}

function corematrix(...args: string[]): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', maxBuffer: 1 << 28 });
}

function libraryOutput<Chunk extends string | Uint8Array>(
  dump: (btf: Btf, write: (chunk: Chunk) => void) => void,
  file: string,
): string {
  const chunks: string[] = [];
  dump(Btf.parse(new Uint8Array(readFileSync(file))), (chunk: Chunk) =>
    chunks.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8')),
  );
  return chunks.join('');
}

/** The one-line error contract: exactly one line, prefixed, and no stack trace. */
function expectOneLineError(result: SpawnSyncReturns<string>, exitCode: number, prefix: string): void {
  expect(result.status).toBe(exitCode);
  expect(result.stdout).toBe('');
  expect(result.stderr.endsWith('\n')).toBe(true);
  expect(result.stderr.trimEnd().split('\n')).toHaveLength(1);
  expect(result.stderr.startsWith(prefix)).toBe(true);
  expect(result.stderr).not.toMatch(/\n\s+at /);
}

beforeAll(() => {
  const built = join(repo, 'dist', 'cli', 'main.js');
  if (statSync(built).mtimeMs < statSync(join(repo, 'harness', 'cli', 'main.ts')).mtimeMs) {
    throw new Error('dist/ is older than harness/cli/main.ts: run `npm run build` (npm test does)');
  }
  dir = mkdtempSync(join(tmpdir(), 'corematrix-cli-'));
  small = compileBtf(
    'small',
    `struct point { int x, y; };
     enum color { RED, GREEN = 5 };
     typedef unsigned long long u64;
     struct shape { struct point corners[4]; enum color color; u64 area; const char *name; union { int i; float f; } v; };
     struct shape shapes[2] __attribute__((section(".data")));
     int area(struct shape *s, int scale) { return s->corners[0].x * scale + s->v.i; }`,
  );
  // Enough types that the raw dump is several times a pipe's 64 KiB buffer.
  const structs = Array.from(
    { length: 1500 },
    (_, i) =>
      `struct s${i} { ${Array.from({ length: 8 }, (_, m) => `long f${m};`).join(' ')} }; struct s${i} v${i};`,
  );
  large = compileBtf('large', structs.join('\n'));
});

afterAll(() => {
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

describe('btf dump', () => {
  it("prints the library's raw dump, byte for byte", () => {
    const result = corematrix('btf', 'dump', small);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(result.stdout).toContain("STRUCT 'shape'");
    expect(result.stdout).toBe(libraryOutput(writeRawDump, small));
  });

  it('prints the same with --format raw', () => {
    expect(corematrix('btf', 'dump', small, '--format', 'raw').stdout).toBe(
      corematrix('btf', 'dump', small).stdout,
    );
  });

  it("prints the library's C header with --format c", () => {
    const result = corematrix('btf', 'dump', '--format', 'c', small);
    expect(result.status).toBe(0);
    expect(result.stdout).toContain('struct point {');
    expect(result.stdout).toBe(libraryOutput(writeCHeader, small));
  });

  it('ends quietly with exit code 0 when its reader goes away (| head)', async () => {
    // Several times: how the write fails depends on timing (EPIPE, or ECONNRESET from the socket
    // Node gives a child's stdout when the reader closed with data unread).
    for (let round = 0; round < 6; round++) {
      const child = spawn(process.execPath, [bin, 'btf', 'dump', large], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (text: string) => {
        stderr += text;
      });
      // Read one chunk, then close the pipe, as `head -n 1` does.
      child.stdout.once('data', () => child.stdout.destroy());
      const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
        child.on('close', (c, s) => resolve([c, s])),
      );
      expect(stderr, `round ${round}`).toBe('');
      expect(signal).toBeNull();
      expect(code).toBe(0);
    }
    // The dump really was larger than what a pipe buffers, or this test proves nothing.
    expect(corematrix('btf', 'dump', large).stdout.length).toBeGreaterThan(4 * 65536);
  });
});

describe('btf info', () => {
  it('summarizes the BTF as JSON, as the library does', () => {
    const result = corematrix('btf', 'info', small, '--json');
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    const info = JSON.parse(result.stdout);
    expect(info.file).toBe(small);
    expect(info.source.container).toBe('raw');
    const expected = JSON.parse(JSON.stringify(summarizeBtf(Btf.parse(new Uint8Array(readFileSync(small))))));
    expect(info.summary).toEqual(expected);
  });

  it.skipIf(!existsSync('/sys/kernel/btf/vmlinux'))("names the running kernel's release for its BTF", () => {
    const result = corematrix('btf', 'info', '--json', '/sys/kernel/btf/vmlinux');
    expect(result.status).toBe(0);
    const uname = spawnSync('uname', ['-r'], { encoding: 'utf8' }).stdout.trim();
    expect(JSON.parse(result.stdout).source).toEqual({ container: 'raw', release: uname });
  });

  it('prints the type count and kinds for a person', () => {
    const btf = Btf.parse(new Uint8Array(readFileSync(small)));
    const result = corematrix('btf', 'info', small);
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`types:\\s+${btf.typeCount - 1}\\b`));
    expect(result.stdout).toMatch(/\bstruct\s+\d+/);
  });
});

describe('bad usage: one line, exit code 2', () => {
  it.each([
    [['btf', 'dump'], "corematrix: missing required argument 'FILE'"],
    [['btf', 'info'], "corematrix: missing required argument 'FILE'"],
    [['btf', 'dump', 'x.btf', '--bogus'], "corematrix: unknown option '--bogus'"],
    [
      ['btf', 'dump', 'x.btf', '--format', 'xml'],
      "corematrix: option '--format <FORMAT>' argument 'xml' is invalid",
    ],
    [['frobnicate'], "corematrix: unknown command 'frobnicate'"],
    [['btf', 'dump', 'a.btf', 'b.btf'], 'corematrix: too many arguments'],
  ])('%j', (args, prefix) => {
    expectOneLineError(corematrix(...args), 2, prefix);
  });

  it('shows the help on stderr and fails without a command', () => {
    const result = corematrix();
    expect(result.status).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain('Usage: corematrix');
  });

  it('--help succeeds on stdout', () => {
    const result = corematrix('btf', 'dump', '--help');
    expect(result.status).toBe(0);
    expect(result.stdout).toContain('--format <FORMAT>');
  });
});

describe('files that cannot be read: one line naming the file, exit code 2 (a UsageError)', () => {
  it('a missing file', () => {
    const missing = join(dir, 'no-such.btf');
    const result = corematrix('btf', 'dump', missing);
    expectOneLineError(result, 2, `corematrix: ${missing}: `);
    expect(result.stderr).toContain('no such file');
  });

  it('a missing base names the base', () => {
    const missing = join(dir, 'no-such-base.btf');
    expectOneLineError(corematrix('btf', 'info', small, '--base', missing), 2, `corematrix: ${missing}: `);
  });

  it('a directory', () => {
    expectOneLineError(corematrix('btf', 'dump', dir), 2, `corematrix: ${dir}: `);
  });
});

describe('bad input: one line naming the file, exit code 1', () => {
  it('a file that is not BTF at all', () => {
    const junk = join(dir, 'junk.btf');
    writeFileSync(junk, 'this is not BTF, nor ELF, nor a kernel image\n'.repeat(4));
    expectOneLineError(corematrix('btf', 'dump', junk), 1, `corematrix: ${junk}: `);
  });

  it('a BTF cut off in the middle of its types, for every command', () => {
    const bytes = readFileSync(small);
    const truncated = join(dir, 'truncated.btf');
    // Past the 24-byte header, but short of the type and string sections it announces.
    writeFileSync(truncated, bytes.subarray(0, 60));
    for (const args of [
      ['btf', 'dump'],
      ['btf', 'dump', '--format', 'c'],
      ['btf', 'info'],
    ]) {
      expectOneLineError(corematrix(...args, truncated), 1, `corematrix: ${truncated}: `);
    }
  });

  it('an empty file', () => {
    const empty = join(dir, 'empty.btf');
    writeFileSync(empty, '');
    expectOneLineError(corematrix('btf', 'info', empty), 1, `corematrix: ${empty}: `);
  });
});

describe('errors nobody expected (in-process, with the output failing)', () => {
  function io(failure: Error): { stdout: Output; stderr: (line: string) => void; errors: string[] } {
    const errors: string[] = [];
    return {
      stdout: {
        write: () => {},
        flush: () => {
          throw failure;
        },
      },
      stderr: (line) => errors.push(line),
      errors,
    };
  }

  it('a bug: says so, prints the stack, exits 70', async () => {
    const broken = io(new TypeError('a bug in the writer'));
    expect(await main(['btf', 'info', small], broken)).toBe(70);
    const text = broken.errors.join('');
    expect(text).toMatch(/^corematrix: internal error/);
    expect(text).toContain('TypeError: a bug in the writer');
    expect(text).toMatch(/\n\s+at /);
  });

  it.each([[['btf', 'info', 'SMALL']], [['--help']], [['btf', 'dump', '--help']]])(
    'the reader going away is no error: %j',
    async (args) => {
      const closed = io(new OutputClosed());
      expect(
        await main(
          args.map((a) => (a === 'SMALL' ? small : a)),
          closed,
        ),
      ).toBe(0);
      expect(closed.errors).toEqual([]);
    },
  );
});
