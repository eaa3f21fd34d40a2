// The libbpf oracle for CO-RE relocations: build/oracle/core-oracle (scripts/oracle/core-oracle.c),
// linked statically against Debian sid's libbpf 1.7, opens a BPF object with a given target BTF,
// runs bpf_object__prepare() and reports, from libbpf's own debug log, what libbpf decided for each
// CO-RE relocation. corematrix's CO-RE engine is tested against it.
//
// The binary prints JSON lines: one per CO-RE relocation in libbpf's processing order (ELF sections
// in .BTF.ext order, records in order within each; libbpf stops at the first failing relocation,
// which is then the last line), optionally one per program with its final instructions (--insns,
// only after a successful prepare), and a final {"done": true, ...} line.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const buildScript = join(repoRoot, 'scripts', 'oracle', 'build-core-oracle.sh');

/** A candidate libbpf tried for a relocation: "<kind> [id] struct name.field (0:1 @ offset 8)". */
export interface OracleCandidate {
  /** Index in libbpf's candidate list ('candidate #N'). */
  index: number;
  matching: boolean;
  /** The candidate's spec as libbpf formats it. */
  spec: string;
}

interface OracleRelocationCommon {
  /** ELF section name of the .BTF.ext core_relo records, e.g. "kprobe/foo" or ".text". */
  section: string;
  /** 'relo #N': the record's index within its section's core_relo records. */
  index: number;
  /** 'prog %s': the (sub)program's name; null for a skipped relocation. */
  function: string | null;
  /**
   * The instruction index within that (sub)program as libbpf prints it; for a poisoned ldimm64,
   * the first of its two instructions. null when libbpf's log does not say (errors before patching).
   */
  insn: number | null;
  /** libbpf's kind name from the local spec ('byte_off', 'field_exists', 'enumval_value', ...). */
  kind: string | null;
  /** The local spec line, e.g. "<byte_off> [40] struct task_struct.tgid (0:85 @ offset 1428)". */
  spec: string | null;
  /** Candidates in libbpf's order; present whenever the local spec was logged. */
  candidates?: OracleCandidate[];
  /** libbpf's WARN lines for this relocation (its own prefix stripped when it had one). */
  warnings?: string[];
}

export interface OraclePatched extends OracleRelocationCommon {
  result: 'patched';
  /** The value in the instruction before and after, as decimal strings (imm, off or imm64). */
  old: string;
  new: string;
  insnClass: 'ALU/ALU64' | 'LDX/ST/STX' | 'LDIMM64';
  operand: 'imm' | 'off' | 'imm64';
  /** When libbpf also changed the load/store size ('mem_sz X -> Y'), in bytes. */
  memSize?: { old: string; new: string };
}

export interface OraclePoisoned extends OracleRelocationCommon {
  result: 'poisoned';
  /** Set when libbpf warned before poisoning (e.g. "accesses field incorrectly"). */
  message?: string;
}

export interface OracleError extends OracleRelocationCommon {
  result: 'error';
  /** The relocation's specific WARN line, without libbpf's "prog 'P': relo #N: " prefix. */
  message: string;
  /** libbpf's errstr() from "failed to relocate: E" / "failed to patch insn #I: E", e.g. "-EINVAL". */
  errorCode: string | null;
}

export interface OracleSkipped extends OracleRelocationCommon {
  result: 'skipped';
  /** "belonging to eliminated weak subprogram" */
  message: string;
}

export type OracleRelocation = OraclePatched | OraclePoisoned | OracleError | OracleSkipped;

export interface OracleDone {
  done: true;
  /** bpf_object__prepare()'s return: 0 or -errno (for stage 'open', bpf_object__open's -errno). */
  prepare: number;
  /** Present when prepare is not 0: which step failed. 'core' = CO-RE relocation. */
  stage?: 'open' | 'core' | 'other';
  /** Present when prepare is not 0: libbpf's reason (its WARN line). */
  error?: string;
  /** Every WARN line libbpf printed. */
  warnings: string[];
}

export interface OracleProgram {
  program: string;
  section: string;
  /** The program's final instructions after prepare, hex (map fds in ldimm64s vary per run). */
  insns: string;
}

export interface OracleReport {
  relocations: OracleRelocation[];
  programs: OracleProgram[];
  done: OracleDone;
}

export interface OracleOptions {
  /** A kernel config file (plain or gzip) for .kconfig externs, instead of the host's. */
  kconfig?: string;
  /** Also report each program's final instructions (after a successful prepare). */
  insns?: boolean;
}

let built: Promise<string> | undefined;

/** Builds build/oracle/core-oracle when needed (and libbpf before it); resolves to its path. */
export function ensureCoreOracle(): Promise<string> {
  built ??= (async () => {
    const r = await execa('bash', [buildScript], { reject: false, stdin: 'ignore' });
    if (r.exitCode !== 0) {
      built = undefined;
      throw new Error(`building the CO-RE oracle failed (exit ${r.exitCode}):\n${r.stderr}`);
    }
    const path = r.stdout.trim().split('\n').pop() ?? '';
    if (path === '') throw new Error(`${buildScript} printed no path`);
    return path;
  })();
  return built;
}

const RESULTS = new Set(['patched', 'poisoned', 'error', 'skipped']);

function parseLines(stdout: string, what: string): OracleReport {
  const relocations: OracleRelocation[] = [];
  const programs: OracleProgram[] = [];
  let done: OracleDone | undefined;
  for (const line of stdout.split('\n')) {
    if (line.trim() === '') continue;
    let value: Record<string, unknown>;
    try {
      value = JSON.parse(line) as Record<string, unknown>;
    } catch {
      throw new Error(`core-oracle ${what}: not JSON: ${line}`);
    }
    if (done !== undefined) throw new Error(`core-oracle ${what}: output after the done line: ${line}`);
    if (value.done === true) {
      done = value as unknown as OracleDone;
    } else if (typeof value.program === 'string') {
      programs.push(value as unknown as OracleProgram);
    } else if (typeof value.result === 'string' && RESULTS.has(value.result)) {
      relocations.push(value as unknown as OracleRelocation);
    } else {
      throw new Error(`core-oracle ${what}: unexpected line: ${line}`);
    }
  }
  if (done === undefined) throw new Error(`core-oracle ${what}: no done line`);
  return { relocations, programs, done };
}

/** Everything the oracle says about OBJ relocated against TARGET_BTF. */
export async function runCoreOracleReport(
  obj: string,
  targetBtf: string,
  options: OracleOptions = {},
): Promise<OracleReport> {
  const bin = await ensureCoreOracle();
  const args = [obj, targetBtf];
  if (options.kconfig !== undefined) args.push('--kconfig', options.kconfig);
  if (options.insns === true) args.push('--insns');
  const r = await execa(bin, args, { reject: false, stdin: 'ignore', maxBuffer: 256 << 20 });
  if (r.exitCode !== 0) {
    throw new Error(`core-oracle ${args.join(' ')} exited ${r.exitCode}:\n${r.stderr}`);
  }
  return parseLines(r.stdout, `${obj} ${targetBtf}`);
}

/**
 * libbpf's decision for each CO-RE relocation of OBJ against TARGET_BTF, in its processing order.
 * When a relocation fails, libbpf stops and that 'error' relocation is the last one. Whether the
 * whole prepare succeeded (maps, externs, ...) is in runCoreOracleReport's `done`.
 */
export async function runCoreOracle(
  obj: string,
  targetBtf: string,
  options: { kconfig?: string } = {},
): Promise<OracleRelocation[]> {
  return (await runCoreOracleReport(obj, targetBtf, options)).relocations;
}
