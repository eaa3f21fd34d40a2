/**
 * The compiler axis: every C source among a matrix's cases built once per toolchain of its
 * `compilers:`, with scripts/build-cases.sh's flags, into a directory per toolchain
 * (`build/compilers/<compiler>/<source path>.o` under the matrix's directory). The runner calls
 * buildCaseObjects before planning and checks each object as `<source>@<compiler>`.
 *
 * A source that does not compile with a toolchain is a finding: its entry carries clang's first
 * error line instead of an object, and its cells are `error` (report.ts). Builds are cached by
 * content: the key covers the source, the headers it can include (its directory's, its include
 * directory's), the toolchain (image tag, or host clang and system headers) and the flags; a build
 * whose key is unchanged is not run again, failed builds included. Objects are written under a
 * temporary name and renamed in, and the cache record after them, so an interrupted build leaves
 * the old object and record or none.
 */

import { randomBytes } from 'node:crypto';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { processStartTime } from '../container/engine.js';
import { sha256, writeFileAtomic } from '../kernels/cache.js';
import type { CompilerDecl, Matrix } from '../matrix/load.js';
import { defaultOutDir, objectPathFor, relativeName } from './axis.js';
import { compileArgs, firstErrorLine, flagsForKey } from './flags.js';
import { hashTree, hostToolchain, type Toolchain } from './toolchain.js';

export interface BuiltObject {
  /** The report's name for it: the source relative to the matrix, `@` the compiler (`cases/minimal.bpf.c@clang-14`). */
  name: string;
  /** The C source (absolute). */
  source: string;
  /** The compiler's name in the matrix. */
  compiler: string;
  /** The object (absolute); absent when the source does not compile with this compiler. */
  path?: string;
  /** sha256 of the object, or of the source when it did not compile. */
  sha256: string;
  /** clang's first error line, when the source does not compile with this compiler. */
  error?: string;
  /** Served from the build cache (nothing was compiled). */
  cached: boolean;
}

export interface BuildOptions {
  /** Where objects go (default `<matrix dir>/build/compilers`); a directory per compiler below it. */
  outDir?: string;
  /** Only these sources (absolute paths, e.g. those a run's plan kept); default every source of the cases. */
  sources?: readonly string[];
  /** Compilations at once per toolchain (default the matrix's concurrency). */
  concurrency?: number;
  /** One line per step, for people ("clang-14: built cases/minimal.bpf.c"). */
  progress?: (line: string) => void;
  /** Opens a Debian toolchain (its image and container); harness/build/container.ts by default. */
  openDebian?: (c: Extract<CompilerDecl, { kind: 'debian' }>, mounts: Mounts) => Promise<Toolchain>;
}

/** What a toolchain container must see, at the same paths as on the host. */
export interface Mounts {
  /** Read-only: the sources' directories and their include directories. */
  readOnly: string[];
  /** Writable: the compiler's output directory. */
  writable: string;
  /** Where clang runs (paths under it are passed relative, so its messages name them so). */
  cwd: string;
}

/** The record beside each output, `<object>.build.json`: the key it was built for, and how it went. */
interface BuildRecord {
  key: string;
  compiler: string;
  source: string;
  ok: boolean;
  /** sha256 of the object (ok). */
  sha256?: string;
  /** clang's first error line and its whole output (not ok). */
  error?: string;
  log?: string;
}

/** A source and what its build depends on besides the toolchain. */
interface SourceInput {
  source: string;
  /** Relative to the matrix directory when under it. */
  relative: string;
  includeDirs: string[];
  /** sha256 over the source and the headers it can reach. */
  contentHash: string;
  sourceSha256: string;
}

/** Version of the cache key's recipe: bump it when what goes into a build changes meaning. */
const KEY_VERSION = 'corematrix-build-1';

/**
 * Builds the C sources of the matrix's cases with each of its compilers. Without `compilers:` there
 * is nothing to build here (sources stand for build-cases.sh's objects): returns []. The result is
 * ordered by source, then compiler, as the matrix lists them.
 */
export async function buildCaseObjects(matrix: Matrix, options: BuildOptions = {}): Promise<BuiltObject[]> {
  const compilers = matrix.compilers ?? [];
  if (compilers.length === 0) return [];
  const sourceFiles = [
    ...new Set(matrix.cases.flatMap((c) => c.files.filter((f) => f.kind === 'source').map((f) => f.path))),
  ].filter((f) => options.sources === undefined || options.sources.includes(f));
  if (sourceFiles.length === 0) return [];
  const outRoot = path.resolve(options.outDir ?? defaultOutDir(matrix));
  const inputs = await sourceInputs(sourceFiles, matrix.dir);
  const concurrency = Math.max(1, options.concurrency ?? matrix.concurrency);
  const readOnly = uniqueDirs(inputs.flatMap((i) => [path.dirname(i.source), ...i.includeDirs]));

  const perCompiler = await Promise.all(
    compilers.map(async (c) => {
      const outDir = path.join(outRoot, c.name);
      const mounts: Mounts = { readOnly, writable: outDir, cwd: matrix.dir };
      const toolchain = await openToolchain(c, matrix, mounts, options);
      try {
        return await buildAll(toolchain, inputs, outDir, matrix.dir, concurrency, options.progress);
      } finally {
        await toolchain.close();
      }
    }),
  );
  return inputs.flatMap((_, i) => perCompiler.map((built) => built[i]!));
}

async function openToolchain(
  c: CompilerDecl,
  matrix: Matrix,
  mounts: Mounts,
  options: BuildOptions,
): Promise<Toolchain> {
  if (c.kind === 'host') return hostToolchain(c, matrix);
  const open = options.openDebian ?? (await import('./container.js')).containerToolchain;
  return open(c, mounts);
}

/** Each source's include directory (`include/` beside it, as cases/include) and content hash. */
async function sourceInputs(sources: string[], dir: string): Promise<SourceInput[]> {
  const treeHashes = new Map<string, Promise<string>>();
  const tree = (d: string) => {
    let h = treeHashes.get(d);
    if (h === undefined) {
      h = hashTree([d]);
      treeHashes.set(d, h);
    }
    return h;
  };
  return Promise.all(
    sources.map(async (source) => {
      const includeDir = path.join(path.dirname(source), 'include');
      const includeDirs = existsSync(includeDir) ? [includeDir] : [];
      const bytes = await fs.readFile(source);
      const headers = await siblingHeaders(path.dirname(source));
      const sourceSha256 = sha256(bytes);
      const contentHash = sha256(
        Buffer.from(
          JSON.stringify({
            source: sourceSha256,
            siblings: headers,
            include: await Promise.all(includeDirs.map(tree)),
          }),
        ),
      );
      return { source, relative: relativeName(source, dir), includeDirs, contentHash, sourceSha256 };
    }),
  );
}

/** The `.h` files beside a source (`#include "common.h"`), by name and content hash. */
async function siblingHeaders(dir: string): Promise<[string, string][]> {
  const names = (await fs.readdir(dir)).filter((n) => n.endsWith('.h')).sort();
  return Promise.all(
    names.map(async (n) => [n, sha256(await fs.readFile(path.join(dir, n)))] as [string, string]),
  );
}

/** Directories, without those inside another of them. */
function uniqueDirs(dirs: string[]): string[] {
  const sorted = [...new Set(dirs.map((d) => path.resolve(d)))].sort();
  return sorted.filter((d, i) => !sorted.slice(0, i).some((p) => d.startsWith(`${p}/`)));
}

async function buildAll(
  toolchain: Toolchain,
  inputs: SourceInput[],
  outDir: string,
  cwd: string,
  concurrency: number,
  progress: BuildOptions['progress'],
): Promise<BuiltObject[]> {
  const results: BuiltObject[] = new Array(inputs.length);
  let next = 0;
  const worker = async () => {
    while (next < inputs.length) {
      const i = next++;
      results[i] = await buildOne(toolchain, inputs[i]!, outDir, cwd);
      const r = results[i];
      progress?.(
        `${toolchain.name}: ${r.cached ? 'cached' : r.error === undefined ? 'built' : 'failed'} ${inputs[i]!.relative}${r.error === undefined ? '' : `: ${r.error}`}`,
      );
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, inputs.length) }, worker));
  return results;
}

async function buildOne(
  toolchain: Toolchain,
  input: SourceInput,
  outDir: string,
  cwd: string,
): Promise<BuiltObject> {
  const output = objectPathFor(outDir, input.relative);
  const recordFile = `${output}.build.json`;
  const key = sha256(
    Buffer.from(
      JSON.stringify([
        KEY_VERSION,
        toolchain.identity,
        flagsForKey(input.includeDirs.length),
        input.contentHash,
      ]),
    ),
  );
  const base = {
    name: `${input.relative}@${toolchain.name}`,
    source: input.source,
    compiler: toolchain.name,
  };

  const record = await readRecord(recordFile);
  if (record?.key === key) {
    if (!record.ok)
      return { ...base, sha256: input.sourceSha256, error: record.error ?? 'did not compile', cached: true };
    const bytes = await fs.readFile(output).catch(() => undefined);
    if (bytes !== undefined && sha256(bytes) === record.sha256)
      return { ...base, path: output, sha256: record.sha256, cached: true };
  }

  await fs.mkdir(path.dirname(output), { recursive: true });
  await sweepTemps(output);
  const temp = path.join(
    path.dirname(output),
    `.${path.basename(output)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`,
  );
  const rel = (p: string) => (p.startsWith(`${cwd}/`) ? path.relative(cwd, p) : p);
  const args = compileArgs({
    source: rel(input.source),
    output: rel(temp),
    includeDirs: input.includeDirs.map(rel),
  });
  let run: Awaited<ReturnType<Toolchain['clang']>>;
  try {
    run = await toolchain.clang(args, cwd);
  } catch (e) {
    await fs.rm(temp, { force: true });
    throw e;
  }
  const common = { key, compiler: toolchain.name, source: input.relative };
  if (run.exitCode === 0 && existsSync(temp)) {
    const bytes = await fs.readFile(temp);
    const digest = sha256(bytes);
    await fs.rename(temp, output);
    await writeFileAtomic(
      recordFile,
      `${JSON.stringify({ ...common, ok: true, sha256: digest } satisfies BuildRecord, null, 2)}\n`,
    );
    return { ...base, path: output, sha256: digest, cached: false };
  }
  await fs.rm(temp, { force: true });
  const error = firstErrorLine(run.output, run.status, cwd);
  // No object for this key: a stale one from an earlier content would be mistaken for it.
  await fs.rm(output, { force: true });
  // A clang that was killed (out of memory, interrupted) says nothing about the source: not cached.
  if (!run.killed && run.exitCode > 0)
    await writeFileAtomic(
      recordFile,
      `${JSON.stringify({ ...common, ok: false, error, log: run.output } satisfies BuildRecord, null, 2)}\n`,
    );
  else await fs.rm(recordFile, { force: true });
  return { ...base, sha256: input.sourceSha256, error, cached: false };
}

/** Removes the temporary objects of builds of `output` whose process is gone (an interrupted build). */
async function sweepTemps(output: string): Promise<void> {
  const base = path.basename(output);
  for (const name of await fs.readdir(path.dirname(output))) {
    if (!name.startsWith(`.${base}.`) || !name.endsWith('.tmp')) continue;
    const pid = Number(name.slice(base.length + 2).split('.')[0]);
    if (Number.isInteger(pid) && pid !== process.pid && processStartTime(pid) === undefined)
      await fs.rm(path.join(path.dirname(output), name), { force: true });
  }
}

async function readRecord(file: string): Promise<BuildRecord | undefined> {
  try {
    const r = JSON.parse(await fs.readFile(file, 'utf8')) as BuildRecord;
    return typeof r.key === 'string' && typeof r.ok === 'boolean' ? r : undefined;
  } catch {
    return undefined;
  }
}
