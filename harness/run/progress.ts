/**
 * Progress of a run on stderr, driven by the runner's task events (vitest-adapter.ts turns
 * @vitest/runner's onTaskUpdate packs into them):
 *
 * - live, on a terminal (and CI unset): one status line redrawn in place — each kernel's phase
 *   (opening/fetching, booting, static, done, fault), cells done/total, elapsed and ETA — with a
 *   line printed above it for every cell that is not ok and every retry;
 * - plain, otherwise: one line per finished cell (kernel, object, status, programs loaded/failed),
 *   plus kernel faults and retries.
 */

import { oneLine } from '../errors.js';
import type { CellSummary } from './runner.js';
import type { TaskEvent } from './vitest-adapter.js';

export interface Progress {
  event(event: TaskEvent, cell?: CellSummary): void;
  /** Clears the live line (before the final summary). */
  finish(): void;
}

function cellLine(
  kernel: string,
  object: string,
  c: CellSummary | undefined,
  state: string | undefined,
): string {
  if (c === undefined) return `${kernel}  ${object}  ${state === 'fail' ? 'failed' : (state ?? '?')}`;
  const counts =
    c.programs === 0 ? '' : `  ${c.loaded}/${c.programs} loaded${c.failed > 0 ? `, ${c.failed} failed` : ''}`;
  const detail =
    c.detail === undefined || (c.status !== 'error' && c.status !== 'infra_error') ? '' : `: ${c.detail}`;
  return `${kernel}  ${object}  ${c.status}${counts}${detail}`;
}

const kernelOf = (e: TaskEvent) => ('kernel' in e.info ? e.info.kernel : undefined);

/** Lines that are worth a line of their own in both modes. */
function noteworthy(e: TaskEvent): string | undefined {
  if (e.type === 'task-retried' && e.info.role === 'vm')
    return `${e.info.kernel}: VM ${oneLine(e.errors?.at(-1) ?? 'infra error')}; trying again`;
  if (e.type === 'task-end' && e.info.role === 'vm' && e.state === 'fail')
    return `${e.info.kernel}: VM tier failed: ${oneLine(e.errors?.at(-1) ?? '')}`;
  if (
    e.type === 'task-end' &&
    (e.info.role === 'expectation' || e.info.role === 'baseline') &&
    e.state === 'fail'
  )
    return `FAILED ${e.name}: ${oneLine((e.errors?.at(-1) ?? '').replace(/^unmet: /, ''))}`;
  return undefined;
}

export function plainProgress(write: (text: string) => void): Progress {
  return {
    event(e, cell) {
      if (e.type === 'log' && kernelOf(e) !== undefined) {
        write(`${kernelOf(e)}: ${oneLine(e.note ?? '')}\n`);
        return;
      }
      if (e.type === 'task-end' && e.info.role === 'cell') {
        write(`${cellLine(e.info.kernel, e.info.object, cell, e.state)}\n`);
        return;
      }
      const line = noteworthy(e);
      if (line !== undefined) write(`${line}\n`);
    },
    finish() {},
  };
}

export interface LiveOptions {
  /** Total cells of the run. */
  cells: number;
  /** Terminal width (default 100). */
  columns?: number;
  now?: () => number;
  /** Redraws at most this often, in ms (default 100). */
  intervalMs?: number;
}

export function liveProgress(write: (text: string) => void, o: LiveOptions): Progress {
  const now = o.now ?? (() => performance.now());
  const start = now();
  const phases = new Map<string, string>();
  let done = 0;
  let drawn = false;
  let last = 0;
  const seconds = (ms: number) =>
    ms < 60_000
      ? `${Math.round(ms / 1000)}s`
      : `${Math.floor(ms / 60_000)}m${String(Math.round((ms % 60_000) / 1000)).padStart(2, '0')}s`;
  const status = () => {
    const elapsed = now() - start;
    const eta = done === 0 || done >= o.cells ? '' : `, ETA ${seconds((elapsed / done) * (o.cells - done))}`;
    const kernels = [...phases].map(([k, p]) => `${k} ${p}`).join(' · ');
    const text = `[${done}/${o.cells} cells, ${seconds(elapsed)}${eta}] ${kernels}`;
    const width = Math.max(20, (o.columns ?? 100) - 1);
    return text.length > width ? `${text.slice(0, width - 1)}…` : text;
  };
  const redraw = (force = false) => {
    const t = now();
    if (!force && t - last < (o.intervalMs ?? 100)) return;
    last = t;
    write(`\r\x1b[K${status()}`);
    drawn = true;
  };
  const above = (line: string) => {
    write(`${drawn ? '\r\x1b[K' : ''}${line}\n`);
    redraw(true);
  };
  return {
    event(e, cell) {
      const kernel = kernelOf(e);
      if (kernel !== undefined) {
        if (e.type === 'log') phases.set(kernel, 'fetching');
        else if (e.type === 'hook-start' && e.info.role === 'kernel') phases.set(kernel, 'opening');
        else if (e.type === 'hook-end' && e.info.role === 'kernel') phases.set(kernel, 'ready');
        else if (e.type === 'task-start' && e.info.role === 'vm') phases.set(kernel, 'booting');
        else if (e.type === 'task-retried' && e.info.role === 'vm') phases.set(kernel, 'booting again');
        else if (e.type === 'task-end' && e.info.role === 'vm')
          phases.set(kernel, e.state === 'pass' ? 'loaded' : 'VM fault');
        else if (e.type === 'task-start' && e.info.role === 'cell') phases.set(kernel, 'cells');
        else if (e.type === 'suite-end' && e.info.role === 'kernel') phases.set(kernel, 'done');
      }
      if (e.type === 'task-end' && e.info.role === 'cell') {
        done++;
        if (cell !== undefined && cell.status !== 'ok')
          above(cellLine(e.info.kernel, e.info.object, cell, e.state));
      }
      const line = noteworthy(e);
      if (line !== undefined) above(line);
      else redraw();
    },
    finish() {
      if (drawn) write('\r\x1b[K');
      drawn = false;
    },
  };
}
