/**
 * How a case source is compiled: the flags of scripts/build-cases.sh (flags.test.ts reads them out
 * of the script, so the two cannot drift), the same for every toolchain so that only the compiler
 * differs between the objects of the compiler axis.
 */

/** scripts/build-cases.sh's COMMON_FLAGS before its -I. */
export const CASE_FLAGS = [
  '-g',
  '-O2',
  '-Wall',
  '-Werror',
  '-Wno-unused-function',
  '-D__TARGET_ARCH_x86',
] as const;

/**
 * After the source's own include directory: the system headers (libbpf's bpf/*.h, asm/*), as
 * -idirafter so that they cannot override vmlinux.h. In a toolchain image they are that suite's.
 */
export const SYSTEM_INCLUDE_FLAGS = [
  '-idirafter',
  '/usr/include',
  '-idirafter',
  '/usr/include/x86_64-linux-gnu',
] as const;

export interface CompileInput {
  source: string;
  output: string;
  /** The source's include directories (cases/include for the built-in suite), in order. */
  includeDirs: readonly string[];
}

/** clang's arguments after the command: little-endian BPF, as build-cases.sh's NAME.bpf.o. */
export function compileArgs(c: CompileInput): string[] {
  return [
    '-target',
    'bpf',
    ...CASE_FLAGS,
    ...c.includeDirs.map((d) => `-I${d}`),
    ...SYSTEM_INCLUDE_FLAGS,
    '-c',
    c.source,
    '-o',
    c.output,
  ];
}

/** The flags as the cache key sees them: everything but the paths of this one build. */
export function flagsForKey(includeDirCount: number): string[] {
  return ['-target', 'bpf', ...CASE_FLAGS, ...Array(includeDirCount).fill('-I…'), ...SYSTEM_INCLUDE_FLAGS];
}

/**
 * The line of clang's output that says why a build failed: the first diagnostic that is an error
 * ("file:line:col: error: …", "fatal error: error in backend: …"), else the first line, else the
 * exit status. Paths under `dir` are shown relative to it.
 */
export function firstErrorLine(log: string, status: string, dir?: string): string {
  const lines = log
    .replace(/\x1b\[[0-9;]*m/g, '')
    .split('\n')
    .map((l) => l.trim());
  const line = lines.find((l) => /\berror:/.test(l)) ?? lines.find((l) => l !== '') ?? `clang ${status}`;
  return dir === undefined ? line : line.split(`${dir.replace(/\/$/, '')}/`).join('');
}
