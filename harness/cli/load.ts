/**
 * `corematrix load OBJ... --kernel NAME [--matrix FILE] [--json] [--strict-infra]`: boots the
 * matrix kernel NAME in a VM and loads every program of the objects, each on its own; prints per
 * program the verdict, errno, the verifier log's first lines and the cause in plain words.
 *
 * Exit codes: 0 when it ran — rejected programs are the finding, not a failure; 1 bad input (an
 * object that is not a BPF object, a file that cannot be read); 2 bad usage (an unknown kernel, a
 * kernel without an image to boot, a bad matrix). An infra fault (panic, timeout, agent dead) is
 * reported per program as `infra_error`, and exits 1 only with --strict-infra.
 */

import { UsageError } from '../errors.js';
import { findKernel, matrixKernelSources } from '../matrix/kernels.js';
import { loadMatrix } from '../matrix/load.js';
import { CellInputError, type CellResult, loadOnKernel, type ProgramVerdict } from '../vm/cell.js';
import type { Output } from './output.js';

export interface LoadCommandOptions {
  objects: string[];
  kernel: string;
  matrix: string;
  json: boolean;
  strictInfra: boolean;
  /** Kernel cache root (default $COREMATRIX_CACHE or ./kernels). */
  cache?: string;
  /** VM timeout in ms (default: the matrix's boot + load timeouts). */
  timeoutMs?: number;
}

export interface LoadIo {
  out: Output;
  stderr: (text: string) => void;
}

/** Runs the command; resolves to its exit code (0, or 1 with --strict-infra / unreadable objects). */
export async function loadCommand(o: LoadCommandOptions, io: LoadIo): Promise<number> {
  const matrix = loadMatrix(o.matrix, { checkCases: false });
  const sources = matrixKernelSources(matrix, o.cache === undefined ? {} : { cache: o.cache });
  const source = findKernel(sources, o.kernel, o.matrix);
  const timeoutMs = o.timeoutMs ?? (matrix.timeouts.boot + matrix.timeouts.load) * 1000;
  let result: CellResult;
  try {
    result = await loadOnKernel({ kernel: source, objects: o.objects, options: { timeoutMs } });
  } catch (e) {
    if (e instanceof CellInputError) throw new UsageError(e.message, { file: o.matrix });
    throw e;
  }
  io.out.write(o.json ? `${JSON.stringify(toJson(result), null, 2)}\n` : formatCell(result));
  const unreadable = result.programs.filter(
    (p) => p.program === '*' && p.cause.startsWith('not a BPF object'),
  );
  for (const p of unreadable) io.stderr(`corematrix: ${p.object}: ${p.cause}\n`);
  if (result.status === 'infra_error') {
    io.stderr(`corematrix: infra error on ${result.kernel}: ${oneLine(result.infra?.reason ?? '')}\n`);
    if (o.strictInfra) return 1;
  }
  return unreadable.length > 0 ? 1 : 0;
}

export function toJson(r: CellResult): unknown {
  return {
    kernel: r.kernel,
    release: r.release,
    status: r.status,
    ...(r.infra === undefined ? {} : { infra: r.infra }),
    accel: r.accel,
    phases: r.phases,
    programs: r.programs.map((p) => {
      const { log: _log, ...rest } = p;
      return rest;
    }),
  };
}

const ms = (n: number | undefined): string => (n === undefined ? '-' : `${(n / 1000).toFixed(2)} s`);

export function formatCell(r: CellResult): string {
  const lines: string[] = [];
  const p = r.phases;
  lines.push(
    `kernel ${r.kernel} (${r.release}), ${r.accel ?? 'no VM'}: boot ${ms(p.boot)}, load ${ms(p.load)}, shutdown ${ms(p.shutdown)}, total ${ms(p.total)}`,
  );
  if (r.infra !== undefined) {
    lines.push(`INFRA ERROR (${r.infra.kind}, ${r.infra.attempts} attempt(s)): ${oneLine(r.infra.reason)}`);
    const tail = r.infra.consoleTail.split('\n').filter((l) => l.trim() !== '');
    lines.push(...indent(tail.slice(-10)));
  }
  let object: string | undefined;
  for (const v of r.programs) {
    if (v.object !== object) {
      object = v.object;
      lines.push('', object);
    }
    lines.push(`  ${verdictLine(v)}`);
    if (v.verdict === 'rejected' && v.logHead !== '')
      lines.push(...indent(v.logHead.split('\n'), '      | '));
    for (const n of v.notes ?? []) lines.push(`      note: ${n}`);
  }
  const count = (v: string) => r.programs.filter((q) => q.verdict === v).length;
  lines.push(
    '',
    `${r.programs.length} programs: ${count('loaded')} loaded, ${count('rejected')} rejected, ${count('refused-before-load')} refused before load, ${count('infra_error')} infra errors`,
  );
  return `${lines.join('\n')}\n`;
}

function verdictLine(v: ProgramVerdict): string {
  const name = v.section === undefined ? v.program : `${v.program} (${v.section})`;
  switch (v.verdict) {
    case 'loaded':
      return `${name}: loaded${v.insnsProcessed === undefined ? '' : `, ${v.insnsProcessed} insns processed`}`;
    case 'rejected':
      return `${name}: rejected, ${v.errnoName ?? '?'}${v.stage === undefined || v.stage === 'prog' ? '' : ` at ${v.stage}`}: ${v.cause}`;
    case 'refused-before-load':
      return `${name}: refused before load: ${v.cause}`;
    case 'infra_error':
      return `${name}: infra error: ${oneLine(v.cause)}`;
  }
}

function indent(lines: string[], prefix = '    '): string[] {
  return lines.map((l) => `${prefix}${l}`);
}

function oneLine(text: string): string {
  return text.trim().replace(/\s*\n\s*/g, ' ');
}
