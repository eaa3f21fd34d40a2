/**
 * Reading matrix.yaml: YAML parsed with node positions kept, validated against schema.ts, every
 * problem reported as `FILE:LINE:COLUMN: what is wrong, what was expected`, and the result turned
 * into a `Matrix`: paths resolved against the matrix file's directory, defaults filled in, case
 * globs expanded.
 */

import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type Document, isMap, isPair, isScalar, isSeq, LineCounter, type Node, parseDocument } from 'yaml';
import type { z } from 'zod';
import { ParseError, UsageError } from '../errors.js';
import { type Expectation, namedKernels, parseExpectEntry } from './expect.js';
import { expandGlob, globProblem } from './glob.js';
import {
  type CaseEntry,
  type CompilerEntry,
  type EXECUTORS,
  type KernelEntry,
  KNOWN_KEYS,
  matrixSchema,
  type TIERS,
} from './schema.js';

export type Tier = (typeof TIERS)[number];

export interface Position {
  line: number;
  column: number;
}

interface KernelCommon {
  name: string;
  at: Position;
}

export interface DebianKernelDecl extends KernelCommon {
  kind: 'debian';
  suite: string;
  flavor: string;
  version?: string;
  package?: string;
}

/** Local files; paths are absolute (resolved against the matrix file's directory). */
export interface LocalKernelDecl extends KernelCommon {
  kind: 'local';
  vmlinuz?: string;
  vmlinux?: string;
  btf?: string;
  config?: string;
}

export interface HostKernelDecl extends KernelCommon {
  kind: 'host';
  /** The running kernel's image, when given: it lets the vm tier boot it. */
  vmlinuz?: string;
}

export type KernelDecl = DebianKernelDecl | LocalKernelDecl | HostKernelDecl;

/** A file a case glob matched: a BPF object, or a C source and the object built from it. */
export type CaseFile = { kind: 'object'; path: string } | { kind: 'source'; path: string; object: string };

export interface CaseDecl {
  pattern: string;
  /** The matches, sorted; empty when the matrix was loaded without checking cases. */
  files: CaseFile[];
  programs?: string[];
  /** What its programs are expected to do (expect.ts), each where the matrix states it. */
  expect?: CaseExpectation[];
  at: Position;
}

export type CaseExpectation = Expectation & { at: Position };

/** A toolchain of the compiler axis (`compilers:`): a Debian suite's clang in a container, or the host's. */
export type CompilerDecl =
  | {
      kind: 'debian';
      name: string;
      suite: string;
      /** The clang package: clang, clang-14, … */
      clang: string;
      at: Position;
    }
  | {
      kind: 'host';
      name: string;
      /** The command, or its path (absolute). */
      clang: string;
      at: Position;
    };

export interface Matrix {
  /** The matrix file (absolute) and its directory, against which its paths are resolved. */
  file: string;
  dir: string;
  kernels: KernelDecl[];
  cases: CaseDecl[];
  tiers: Tier[];
  concurrency: number;
  /** Seconds. */
  timeouts: { boot: number; load: number };
  /** Absolute directory reports go to. */
  reports: string;
  /** The compiler axis, when the file has `compilers:`: C sources among the cases are built with each. */
  compilers?: CompilerDecl[];
  /** Where the VMs run (`executor:`, local by default). */
  executor: Executor;
}

export type Executor = (typeof EXECUTORS)[number];

export const DEFAULTS = {
  flavor: 'cloud-amd64',
  tiers: ['static', 'vm'] as Tier[],
  timeouts: { boot: 120, load: 30 },
  reports: 'reports',
} as const;

/** One problem in a matrix file, where it is. */
export interface MatrixProblem extends Position {
  message: string;
}

/**
 * A matrix file that is not valid: a ParseError('config') whose one line is
 * `FILE:LINE:COLUMN: problem` (the first problem by position; `problems` has them all).
 */
export class MatrixError extends ParseError {
  readonly line: number;
  readonly column: number;
  readonly problems: MatrixProblem[];

  constructor(file: string, problems: MatrixProblem[]) {
    const first = problems[0]!;
    const more = problems.length > 1 ? ` (and ${problems.length - 1} more)` : '';
    super('config', `${first.message}${more}`);
    this.name = 'MatrixError';
    this.file = file;
    this.line = first.line;
    this.column = first.column;
    this.problems = problems;
  }

  override describe(): string {
    return `${this.file}:${this.line}:${this.column}: ${this.reason}`;
  }
}

export function isMatrixError(e: unknown): e is MatrixError {
  return e instanceof Error && e.name === 'MatrixError' && Array.isArray((e as MatrixError).problems);
}

export interface LoadOptions {
  /**
   * Expand the case globs and require each to match (default true). The `kernels` commands do not
   * need the cases, so they load a matrix whose objects are not built yet.
   */
  checkCases?: boolean;
}

/** Reads and validates a matrix file. A file that cannot be read → UsageError naming it. */
export function loadMatrix(file: string, options: LoadOptions = {}): Matrix {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : String(code);
    throw new UsageError(`cannot read the matrix: ${why}`, { cause: e, file });
  }
  return parseMatrix(text, file, options);
}

/** Validates matrix text; `file` names it in errors and anchors its relative paths. */
export function parseMatrix(text: string, file: string, options: LoadOptions = {}): Matrix {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number): Position => {
    const p = lines.linePos(offset);
    return { line: p.line, column: p.col };
  };
  if (doc.errors.length > 0) {
    throw new MatrixError(
      file,
      doc.errors.map((e) => ({ ...at(e.pos[0]), message: `YAML: ${yamlMessage(e.message)}` })),
    );
  }
  const result = matrixSchema.safeParse(doc.toJS() ?? undefined);
  if (!result.success) {
    const present = (p: readonly PropertyKey[]) => nodeAt(doc, p as PathKey[]).depth === p.length;
    const problems = rootCauses(result.error.issues, present).flatMap((issue) =>
      describeIssue(issue, [], doc, at),
    );
    problems.sort((a, b) => a.line - b.line || a.column - b.column);
    throw new MatrixError(file, problems);
  }
  const dir = path.dirname(path.resolve(file));
  const m = result.data;
  const positionOf = (p: (string | number)[]) => nodePosition(doc, p, at);
  const kernels = m.kernels.map((k, i) => kernelDecl(k, dir, positionOf(['kernels', i])));
  const problems: MatrixProblem[] = [];
  const cases = m.cases.map((c, i) => {
    const decl = caseDecl(c, positionOf(typeof c === 'string' ? ['cases', i] : ['cases', i, 'path']));
    if (typeof c !== 'string' && c.expect !== undefined) {
      decl.expect = c.expect.flatMap((entry, j) => {
        const parsed = parseExpectEntry(entry);
        const at = positionOf(['cases', i, 'expect', j]);
        if ('problems' in parsed) return [];
        for (const e of parsed.expectations) {
          const known = kernels.map((k) => k.name);
          for (const name of namedKernels(e).filter((n) => !known.includes(n))) {
            problems.push({
              ...at,
              message: `cases[${i}].expect[${j}]: ${unknownKernelMessage(name, known)}`,
            });
          }
        }
        return parsed.expectations.map((e) => ({ ...e, at }));
      });
    }
    if (options.checkCases !== false) {
      const found = expandCase(decl, dir);
      if (typeof found === 'string') problems.push({ ...decl.at, message: found });
      else decl.files = found;
    } else {
      const problem = globProblem(decl.pattern);
      if (problem !== undefined) problems.push({ ...decl.at, message: `bad glob: ${problem}` });
    }
    return decl;
  });
  // The compiler axis builds C sources: with only objects among the cases it would do nothing.
  if (m.compilers !== undefined && options.checkCases !== false && problems.length === 0) {
    if (!cases.some((c) => c.files.some((f) => f.kind === 'source')))
      problems.push({
        ...keyPosition(doc, [], 'compilers', at),
        message: 'compilers: builds the C sources (.c) among the cases, and the case globs match none',
      });
  }
  if (problems.length > 0) throw new MatrixError(file, problems);
  const compilers = m.compilers?.map((c, i) => compilerDecl(c, dir, positionOf(['compilers', i])));
  return {
    file: path.resolve(file),
    dir,
    kernels,
    cases,
    tiers: m.tiers ?? [...DEFAULTS.tiers],
    concurrency: m.concurrency ?? Math.max(1, os.availableParallelism()),
    timeouts: {
      boot: m.timeouts?.boot ?? DEFAULTS.timeouts.boot,
      load: m.timeouts?.load ?? DEFAULTS.timeouts.load,
    },
    reports: path.resolve(dir, m.reports ?? DEFAULTS.reports),
    ...(compilers === undefined ? {} : { compilers }),
    executor: m.executor ?? 'local',
  };
}

function kernelDecl(k: KernelEntry, dir: string, at: Position): KernelDecl {
  const abs = (p: string | undefined) => (p === undefined ? undefined : path.resolve(dir, p));
  const optional = <T extends object>(o: T): T =>
    Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
  if (k.host === true) return optional({ kind: 'host', name: k.name, at, vmlinuz: abs(k.vmlinuz) });
  if (k.suite !== undefined) {
    return optional({
      kind: 'debian',
      name: k.name,
      at,
      suite: k.suite,
      flavor: k.flavor ?? DEFAULTS.flavor,
      version: k.version,
      package: k.package,
    });
  }
  return optional({
    kind: 'local',
    name: k.name,
    at,
    vmlinuz: abs(k.vmlinuz),
    vmlinux: abs(k.vmlinux),
    btf: abs(k.btf),
    config: abs(k.config),
  });
}

function compilerDecl(c: CompilerEntry, dir: string, at: Position): CompilerDecl {
  if (c.host === true) {
    // A path (it has a slash) is relative to the matrix file; a bare command is looked up on PATH.
    const clang =
      c.clang === undefined ? 'clang' : c.clang.includes('/') ? path.resolve(dir, c.clang) : c.clang;
    return { kind: 'host', name: c.name, clang, at };
  }
  return { kind: 'debian', name: c.name, suite: c.suite!, clang: c.clang ?? 'clang', at };
}

function caseDecl(c: CaseEntry, at: Position): CaseDecl {
  if (typeof c === 'string') return { pattern: c, files: [], at };
  const decl: CaseDecl = { pattern: c.path, files: [], at };
  if (c.programs !== undefined) decl.programs = c.programs;
  return decl;
}

/**
 * The object scripts/build-cases.sh makes of a C source: NAME.c → build/cases/NAME.o, relative to
 * the directory of the matrix file (the repository root, for the built-in suite).
 */
export function builtObjectFor(source: string, dir: string): string {
  return path.join(dir, 'build', 'cases', `${path.basename(source, '.c')}.o`);
}

/** The files a case glob matches, or what is wrong with it. */
function expandCase(decl: CaseDecl, dir: string): CaseFile[] | string {
  const problem = globProblem(decl.pattern);
  if (problem !== undefined) return `bad glob: ${problem}`;
  const matches = expandGlob(decl.pattern, dir);
  if (matches.length === 0) {
    const hint = /\.o$/.test(decl.pattern)
      ? ' (objects are built: for the built-in suite, run bash scripts/build-cases.sh first)'
      : '';
    return `case glob "${decl.pattern}" matches no file under ${dir}${hint}`;
  }
  const files: CaseFile[] = [];
  for (const file of matches) {
    if (file.endsWith('.o')) files.push({ kind: 'object', path: file });
    else if (file.endsWith('.c'))
      files.push({ kind: 'source', path: file, object: builtObjectFor(file, dir) });
    else {
      return `case glob "${decl.pattern}" matches ${path.relative(dir, file)}, which is neither a BPF object (.o) nor a C source (.c)`;
    }
  }
  return files;
}

// ---------------------------------------------------------------------------------------------
// Positions and messages

type At = (offset: number) => Position;
type PathKey = string | number;

/** The node at `p`, or the deepest node on the way there that exists. */
function nodeAt(doc: Document, p: readonly PathKey[]): { node: Node | undefined; depth: number } {
  let node: unknown = doc.contents;
  let depth = 0;
  for (const key of p) {
    let next: unknown;
    if (isMap(node)) next = node.items.find((pair) => isScalar(pair.key) && pair.key.value === key)?.value;
    else if (isSeq(node) && typeof key === 'number') next = node.items[key];
    if (next === undefined || next === null) break;
    node = next;
    depth++;
  }
  return { node: (node ?? undefined) as Node | undefined, depth };
}

function nodePosition(doc: Document, p: readonly PathKey[], at: At): Position {
  const { node } = nodeAt(doc, p);
  return node?.range === undefined || node.range === null ? { line: 1, column: 1 } : at(node.range[0]);
}

/** The key node of `key` in the mapping at `p`. */
function keyPosition(doc: Document, p: readonly PathKey[], key: string, at: At): Position {
  const { node, depth } = nodeAt(doc, p);
  if (depth === p.length && isMap(node)) {
    const pair = node.items.find((x) => isPair(x) && isScalar(x.key) && x.key.value === key);
    const range = pair !== undefined && isScalar(pair.key) ? pair.key.range : undefined;
    if (range !== undefined && range !== null) return at(range[0]);
  }
  return nodePosition(doc, p, at);
}

/** The keys allowed in the mapping at `p`. */
function knownKeys(p: readonly PathKey[]): readonly string[] {
  if (p.length === 0) return KNOWN_KEYS.root;
  if (p[0] === 'kernels' && p.length === 2) return KNOWN_KEYS.kernel;
  if (p[0] === 'cases' && p.length === 2) return KNOWN_KEYS.case;
  if (p[0] === 'cases' && p[2] === 'expect' && p.length === 4) return KNOWN_KEYS.expect;
  if (p[0] === 'timeouts' && p.length === 1) return KNOWN_KEYS.timeouts;
  if (p[0] === 'compilers' && p.length === 2) return KNOWN_KEYS.compiler;
  return [];
}

function where(p: readonly PathKey[]): string {
  if (p.length === 0) return 'the matrix';
  return p.map((k, i) => (typeof k === 'number' ? `[${k}]` : i === 0 ? k : `.${k}`)).join('');
}

/** Describes the YAML value at `p` for "got …" (its source text for scalars). */
function describeValue(doc: Document, p: readonly PathKey[]): string | undefined {
  const { node, depth } = nodeAt(doc, p);
  if (depth !== p.length || node === undefined) return undefined;
  if (isMap(node)) return 'a mapping';
  if (isSeq(node)) return 'a list';
  if (isScalar(node)) {
    const v = node.value;
    const text = node.source ?? String(v);
    if (v === null) return 'an empty value';
    if (typeof v === 'number') return `the number ${text}`;
    if (typeof v === 'boolean') return `${text} (a boolean)`;
    return JSON.stringify(v);
  }
  return undefined;
}

const EXPECTED: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
  object: 'a mapping',
  array: 'a list',
};

function describeIssue(issue: z.core.$ZodIssue, prefix: PathKey[], doc: Document, at: At): MatrixProblem[] {
  const p = [...prefix, ...(issue.path as PathKey[])];
  const pos = () => nodePosition(doc, p, at);
  const got = describeValue(doc, p);
  switch (issue.code) {
    case 'unrecognized_keys':
      return issue.keys.map((key) => {
        const known = knownKeys(p);
        const close = closest(key, known);
        const hint = close === undefined ? '' : ` (did you mean "${close}"?)`;
        return {
          ...keyPosition(doc, p, key, at),
          message: `unknown key "${key}" in ${where(p)}${hint}; expected one of: ${known.join(', ')}`,
        };
      });
    case 'invalid_type': {
      const expected = EXPECTED[issue.expected] ?? issue.expected;
      if (got === undefined) {
        const key = p[p.length - 1];
        return [
          {
            ...pos(),
            message: `missing ${typeof key === 'string' ? `key ${key}:` : 'value'} in ${where(p.slice(0, -1))} (expected ${expected})`,
          },
        ];
      }
      const { node } = nodeAt(doc, p);
      const quote =
        issue.expected === 'string' && isScalar(node) && node.value !== null && node.source !== undefined
          ? ` (quote it: "${node.source}")`
          : '';
      return [{ ...pos(), message: `${where(p)}: expected ${expected}, got ${got}${quote}` }];
    }
    case 'invalid_value': {
      const values = issue.values.map((v) => String(v));
      const { node } = nodeAt(doc, p);
      const close =
        isScalar(node) && typeof node.value === 'string' ? closest(node.value, values) : undefined;
      const hint = close === undefined ? '' : ` (did you mean ${close}?)`;
      const message = issue.message.startsWith('Invalid')
        ? `expected ${values.length === 1 ? values[0] : `one of ${values.join(', ')}`}`
        : issue.message;
      return [{ ...pos(), message: `${where(p)}: ${message}, got ${got ?? 'nothing'}${hint}` }];
    }
    case 'invalid_format':
      return [{ ...pos(), message: `${where(p)}: ${issue.message}, got ${got ?? 'nothing'}` }];
    case 'too_small':
    case 'too_big': {
      const custom = !issue.message.startsWith('Too') && !issue.message.startsWith('Invalid');
      const bound = issue.code === 'too_small' ? `at least ${issue.minimum}` : `at most ${issue.maximum}`;
      const what =
        issue.origin === 'string'
          ? issue.code === 'too_small'
            ? 'a non-empty string'
            : `a string of ${bound} characters`
          : issue.origin === 'array'
            ? `${bound} item(s)`
            : bound;
      return [
        {
          ...pos(),
          message: `${where(p)}: ${custom ? issue.message : `expected ${what}`}, got ${got ?? 'nothing'}`,
        },
      ];
    }
    case 'invalid_union': {
      // The cases are a glob or a mapping: say what is wrong with the form that was written.
      const { node } = nodeAt(doc, p);
      const branch = isMap(node)
        ? issue.errors[1]
        : isScalar(node) && typeof node.value === 'string'
          ? issue.errors[0]
          : undefined;
      if (branch !== undefined && branch.length > 0)
        return branch.flatMap((inner) => describeIssue(inner, p, doc, at));
      return [
        {
          ...pos(),
          message: `${where(p)}: expected a glob or a mapping with path:, got ${got ?? 'nothing'}`,
        },
      ];
    }
    case 'custom': {
      // Cross-key checks point at the key they are about ("two sources": the second source's key).
      const last = p[p.length - 1];
      const position = typeof last === 'string' ? keyPosition(doc, p.slice(0, -1), last, at) : pos();
      return [{ ...position, message: issue.message }];
    }
    default:
      return [{ ...pos(), message: `${where(p)}: ${issue.message}` }];
  }
}

/**
 * Leaves out what a misspelled key explains: in a mapping with an unknown key, a missing required
 * key and the checks across keys (a kernel's sources) only repeat that mistake ("sute: sid" is
 * not a kernel without a source).
 */
function rootCauses(
  issues: readonly z.core.$ZodIssue[],
  present: (p: readonly PropertyKey[]) => boolean,
): z.core.$ZodIssue[] {
  const misspelled = new Set(
    issues.filter((i) => i.code === 'unrecognized_keys').map((i) => JSON.stringify(i.path)),
  );
  if (misspelled.size === 0) return [...issues];
  const within = (p: readonly PropertyKey[], depth: number) =>
    misspelled.has(JSON.stringify(p.slice(0, Math.max(0, p.length - depth))));
  return issues.filter((i) => {
    if (i.code === 'custom') return !(within(i.path, 0) || within(i.path, 1));
    if (i.code === 'invalid_type' && !present(i.path)) return !within(i.path, 1);
    return true;
  });
}

/** The first line of a YAML error, without the position the caller reports itself. */
function yamlMessage(message: string): string {
  return (message.split('\n')[0] ?? message).replace(/ at line \d+, column \d+:?$/, '');
}

/**
 * The one line every command gives for a kernel name the matrix does not declare, with the likely
 * name it was meant to be and the names there are.
 */
export function unknownKernelMessage(name: string, known: readonly string[]): string {
  const close = closest(name, known);
  return `no kernel named ${JSON.stringify(name)}${close === undefined ? '' : ` (did you mean ${close}?)`}; the matrix has: ${known.join(', ')}`;
}

/** The candidate closest to `word` by edit distance, if close enough to be a likely typo. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  const limit = Math.max(1, Math.floor(Math.max(word.length, 3) / 3));
  return bestDistance <= limit ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row.push(Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + cost));
    }
    prev = row;
  }
  return prev[b.length]!;
}
