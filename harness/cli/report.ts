/**
 * The report commands: `report render`, `diff`, `merge`, `plan`. Skeleton: they land with issue 7.
 */

import { NotSupportedError } from '../errors.js';
import type { Invocation } from './main.js';
import type { Output } from './output.js';

export interface ReportIo {
  out: Output;
  stderr: (text: string) => void;
}

export async function reportCommand(
  invocation: Extract<Invocation, { command: 'report render' | 'diff' | 'merge' | 'plan' }>,
  _io: ReportIo,
): Promise<number> {
  throw new NotSupportedError(invocation.command, `corematrix ${invocation.command} is not built yet`);
}
