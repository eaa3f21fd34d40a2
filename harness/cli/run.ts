/**
 * `corematrix run`: the matrix runner's command line (the runner itself lives in harness/run/).
 * Skeleton: the runner lands with issue 7.
 */

import { NotSupportedError } from '../errors.js';
import type { Output } from './output.js';

/** The flags as commander hands them over. */
export interface RunCommandFlags {
  matrix: string;
  tier?: 'static' | 'vm' | 'all';
  kernel?: string[];
  case?: string[];
  out?: string;
  baseline?: string;
  shard?: string;
  strictInfra: boolean;
  concurrency?: number;
  executor?: 'local' | 'container';
}

export interface RunCommandOptions extends RunCommandFlags {
  /** Kernel cache root (default $COREMATRIX_CACHE or ./kernels). */
  cache?: string;
}

export interface RunIo {
  out: Output;
  stderr: (text: string) => void;
}

export async function runCommand(_o: RunCommandOptions, _io: RunIo): Promise<number> {
  throw new NotSupportedError('run', 'corematrix run is not built yet');
}
