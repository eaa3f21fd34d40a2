/**
 * Runs VMs side by side, at most `concurrency` at once (default: the number of cores; under TCG a
 * VM with one CPU keeps one core busy), retrying runs that ended in an infrastructure fault.
 */

import os from 'node:os';
import type { OutcomeKind } from './qemu.js';
import { type RunOptions, type RunOutcome, runInVm } from './run.js';

export interface RetryPolicy {
  /** Runs after the first one (0: never retry). */
  retries: number;
  /** The outcomes worth another run: faults of the VM, not of what runs in it. */
  on: readonly OutcomeKind[];
}

/**
 * A panic, a timeout or a boot that never reached the init can be the host's doing (memory,
 * load); QEMU refusing a kernel file or the init dying are not cured by another run.
 */
export const DEFAULT_RETRY: RetryPolicy = { retries: 1, on: ['kernel-panic', 'timeout', 'no-init'] };

export interface PooledOutcome extends RunOutcome {
  /** The earlier runs that were retried, oldest first (empty when the first run counted). */
  retried: RunOutcome[];
}

export interface PoolOptions {
  concurrency?: number;
  retry?: RetryPolicy;
  /** Called after every run, retried or not (progress lines). */
  onRun?: (outcome: RunOutcome, attempt: number) => void;
  /** The run itself (tests replace it). */
  runner?: (o: RunOptions) => Promise<RunOutcome>;
}

export class VmPool {
  readonly concurrency: number;
  private readonly retry: RetryPolicy;
  private readonly options: PoolOptions;
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(options: PoolOptions = {}) {
    this.concurrency = Math.max(1, options.concurrency ?? os.availableParallelism());
    this.retry = options.retry ?? DEFAULT_RETRY;
    this.options = options;
  }

  /** VMs running now. */
  get active(): number {
    return this.running;
  }

  private async slot<T>(work: () => Promise<T>): Promise<T> {
    if (this.running >= this.concurrency) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.running++;
    try {
      return await work();
    } finally {
      const next = this.waiting.shift();
      // The slot passes straight to the next waiter, so `running` stays as it is.
      if (next === undefined) this.running--;
      else next();
    }
  }

  /** Runs one VM (waiting for a free slot), retried per the policy. Each retry waits for a slot again. */
  async run(o: RunOptions): Promise<PooledOutcome> {
    const runner = this.options.runner ?? runInVm;
    const retried: RunOutcome[] = [];
    for (let attempt = 0; ; attempt++) {
      const outcome = await this.slot(() => runner(o));
      this.options.onRun?.(outcome, attempt);
      const again =
        attempt < this.retry.retries && this.retry.on.includes(outcome.kind) && o.signal?.aborted !== true;
      if (!again) return { ...outcome, retried };
      retried.push(outcome);
    }
  }

  /** Runs them all, results in the order given. */
  runAll(runs: readonly RunOptions[]): Promise<PooledOutcome[]> {
    return Promise.all(runs.map((o) => this.run(o)));
  }
}
