/**
 * Toolchains of the compiler axis, ready to compile: what identifies each in build cache keys and
 * how its clang is run. The host's clang runs as a child process; a Debian suite's runs in a
 * container of its toolchain image (container.ts).
 */

import { createHash } from 'node:crypto';
import { promises as fs, statSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import type { CompilerDecl, Matrix } from '../matrix/load.js';
import { MatrixError } from '../matrix/load.js';

export interface ClangRun {
  exitCode: number;
  /** stdout and stderr, interleaved as clang wrote them. */
  output: string;
  /** How clang ended, for the error line when it said nothing: "exited with status 1". */
  status: string;
  /** Killed by a signal (out of memory, interrupted): says nothing about the source. */
  killed: boolean;
}

export interface Toolchain {
  /** The compiler's name in the matrix (the `@name` of its objects). */
  name: string;
  /**
   * What decides its output besides the source and flags: the toolchain image's content-derived tag,
   * or the host clang's path, version and the system's libbpf headers. Part of every cache key.
   */
  identity: string;
  /** Runs clang with `args` in `cwd` (sources, include dirs and the output directory reachable there). */
  clang(args: string[], cwd: string): Promise<ClangRun>;
  /** Releases what it holds (its container). */
  close(): Promise<void>;
}

/** Directories whose headers the host's clang reads besides the source's own: libbpf's. */
const HOST_SYSTEM_HEADERS = ['/usr/include/bpf'];

/** The host's clang: the command on PATH, or a path. A clang that does not run is a matrix mistake. */
export async function hostToolchain(
  c: Extract<CompilerDecl, { kind: 'host' }>,
  matrix: Pick<Matrix, 'file'>,
): Promise<Toolchain> {
  const version = await execa(c.clang, ['--version'], { reject: false, stdin: 'ignore' });
  if (version.exitCode !== 0 || version.failed) {
    const why =
      (version as { code?: string }).code === 'ENOENT'
        ? `${c.clang} not found${c.clang.includes('/') ? '' : ' on PATH'}`
        : `${c.clang} --version failed: ${version.stderr.split('\n')[0] || version.shortMessage}`;
    throw new MatrixError(matrix.file, [{ ...c.at, message: `compiler "${c.name}": ${why}` }]);
  }
  const binary = await fs.realpath(c.clang.includes('/') ? c.clang : await onPath(c.clang));
  const identity = [
    'host',
    binary,
    version.stdout.split('\n')[0] ?? '',
    await hashTree(HOST_SYSTEM_HEADERS.filter((d) => existsDir(d))),
  ].join('\n');
  return {
    name: c.name,
    identity,
    async clang(args, cwd) {
      const r = await execa(binary, args, { cwd, all: true, reject: false, stdin: 'ignore' });
      return {
        exitCode: r.exitCode ?? -1,
        output: r.all ?? '',
        status:
          r.signal !== undefined && r.signal !== null
            ? `was killed by ${r.signal}`
            : `exited with status ${r.exitCode}`,
        killed: r.signal !== undefined && r.signal !== null,
      };
    },
    close: async () => {},
  };
}

/** The file a command name runs, as the shell would find it. */
async function onPath(command: string): Promise<string> {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir === '') continue;
    const file = path.join(dir, command);
    try {
      await fs.access(file, fs.constants.X_OK);
      return file;
    } catch {}
  }
  return command;
}

function existsDir(dir: string): boolean {
  try {
    return statSync(dir).isDirectory();
  } catch {
    return false;
  }
}

/**
 * sha256 over every file under the directories (path relative to its directory, then content), in
 * a fixed order: a header added, removed or changed changes it; moving the tree elsewhere does not.
 */
export async function hashTree(dirs: readonly string[]): Promise<string> {
  const h = createHash('sha256');
  for (const dir of dirs) {
    const names = (await fs.readdir(dir, { recursive: true, withFileTypes: true }))
      .filter((e) => e.isFile())
      .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
      .sort();
    h.update(`dir\0${names.length}\0`);
    for (const name of names) {
      const bytes = await fs.readFile(path.join(dir, name));
      h.update(`${name}\0${bytes.length}\0`).update(bytes);
    }
  }
  return h.digest('hex');
}
