/**
 * The fence around @vitest/runner: the only file that imports it (it is deprecated upstream and
 * pinned to ~4.1; replacing it means rewriting this file alone). The runner gives the matrix run
 * vitest's task engine: collection into suites and tasks, per-task timeouts, retries with a
 * condition on the error, beforeAll hooks, concurrency between suites, and task updates for
 * progress and results.
 *
 * The rest of corematrix describes a run as a tree of plain specs (SuiteSpec / TaskSpec) and gets
 * back plain outcomes. The tasks @vitest/runner builds stay serializable, as vitest keeps them: the
 * functions live in the runner's own WeakMaps (test()/beforeAll()), corematrix's description of
 * each task in `task.meta.corematrix` (JSON), and outcomes are read from task results by task id.
 * One startTests call per run (the runner keeps its state at module level).
 */

import {
  beforeAll,
  startTests,
  suite,
  type Task,
  type TaskEventPack,
  type TaskResultPack,
  test,
  type VitestRunner,
  type VitestRunnerConfig,
} from '@vitest/runner';

/** What a task is, in corematrix's terms (JSON: it travels in task meta). */
export type TaskInfo =
  | { role: 'kernel'; kernel: string }
  | { role: 'vm'; kernel: string; objects: number }
  | { role: 'cell'; kernel: string; object: string }
  | { role: 'expectations' }
  | { role: 'expectation'; object: string }
  | { role: 'baseline' };

declare module '@vitest/runner' {
  interface TaskMeta {
    corematrix?: TaskInfo;
  }
}

export interface TaskContext {
  /** Aborted when the task times out or the run is cancelled. */
  signal: AbortSignal;
  /** Which try this is: 0 first, then 1, 2 … on retries. */
  attempt: number;
  /** Ends the task as skipped, with a note saying why. */
  skip(note: string): never;
}

export interface TaskSpec {
  kind: 'task';
  name: string;
  info: TaskInfo;
  timeoutMs: number;
  /** Tries again (up to `count` times) when the error's message matches `when`; nothing else is retried. */
  retry?: { count: number; when: RegExp };
  run(context: TaskContext): Promise<void> | void;
}

export interface SuiteSpec {
  kind: 'suite';
  name: string;
  info: TaskInfo;
  /** Runs side by side with its neighbours that are concurrent too (its own tasks run in order). */
  concurrent?: boolean;
  beforeAll?: { run(): Promise<void> | void; timeoutMs: number };
  children: (TaskSpec | SuiteSpec)[];
}

export type TaskState = 'pass' | 'fail' | 'skip';

export interface TaskEvent {
  /** `log`: a line a task wrote about what it is doing (a kernel being fetched), in `note`. */
  type:
    | 'suite-start'
    | 'hook-start'
    | 'hook-end'
    | 'task-start'
    | 'task-retried'
    | 'task-end'
    | 'suite-end'
    | 'log';
  name: string;
  info: TaskInfo;
  state?: TaskState;
  errors?: string[];
  note?: string;
  durationMs?: number;
  retryCount?: number;
}

export interface TaskOutcome {
  name: string;
  info: TaskInfo;
  state: TaskState;
  errors: string[];
  note?: string;
  retryCount: number;
  durationMs: number;
}

export interface RunTreeOptions {
  /** Suites (and tasks) at once in a concurrent group. */
  maxConcurrency: number;
  onEvent?: (event: TaskEvent) => void;
}

/** The virtual file the run's tasks are collected from (no file is read). */
const RUN_FILE = 'corematrix-run';

function define(spec: SuiteSpec | TaskSpec, attempts: Map<string, number>): void {
  if (spec.kind === 'task') {
    test(
      spec.name,
      {
        timeout: spec.timeoutMs,
        concurrent: false,
        meta: { corematrix: spec.info },
        ...(spec.retry === undefined
          ? {}
          : { retry: { count: spec.retry.count, condition: spec.retry.when } }),
      },
      (context) =>
        spec.run({
          signal: context.signal,
          attempt: attempts.get(context.task.id) ?? 0,
          skip: (note) => context.skip(note) as never,
        }),
    );
    return;
  }
  suite(spec.name, { concurrent: spec.concurrent === true, meta: { corematrix: spec.info } }, () => {
    if (spec.beforeAll !== undefined) {
      const hook = spec.beforeAll;
      beforeAll(async () => {
        await hook.run();
      }, hook.timeoutMs);
    }
    for (const child of spec.children) define(child, attempts);
  });
}

function messages(result: Task['result']): string[] {
  return (result?.errors ?? []).map((e) => e.message ?? String(e));
}

/** Runs the tree; resolves to the outcome of every task, in the tree's order. */
export async function runTaskTree(
  root: readonly SuiteSpec[],
  options: RunTreeOptions,
): Promise<TaskOutcome[]> {
  const attempts = new Map<string, number>();
  const tasks = new Map<string, Task>();
  const emit = options.onEvent ?? (() => {});
  const info = (task: Task): TaskInfo | undefined => task.meta.corematrix;
  const config: VitestRunnerConfig = {
    root: process.cwd(),
    setupFiles: [],
    name: undefined,
    passWithNoTests: true,
    testNamePattern: undefined,
    allowOnly: false,
    sequence: { shuffle: false, concurrent: false, seed: 0, hooks: 'stack', setupFiles: 'list' },
    chaiConfig: undefined,
    maxConcurrency: Math.max(1, options.maxConcurrency),
    testTimeout: 60_000,
    hookTimeout: 60_000,
    retry: 0,
    includeTaskLocation: false,
    tags: [],
    tagsFilter: undefined,
    strictTags: false,
  };
  const runner: VitestRunner = {
    config,
    importFile: (_file, source) => {
      if (source === 'collect') for (const s of root) define(s, attempts);
    },
    onCollected: (files) => {
      const walk = (t: Task) => {
        tasks.set(t.id, t);
        if (t.type === 'suite') for (const c of t.tasks) walk(c);
      };
      for (const f of files) walk(f);
    },
    onBeforeTryTask: (t, { retry }) => {
      attempts.set(t.id, retry);
      // The runner's own "test-retried" update comes after every try, the last one too: a try
      // starting again is the retry.
      const what = info(t);
      if (retry > 0 && what !== undefined)
        emit({
          type: 'task-retried',
          name: t.name,
          info: what,
          errors: messages(t.result),
          retryCount: retry,
        });
    },
    onTaskUpdate: async (packs: TaskResultPack[], events: TaskEventPack[]) => {
      const results = new Map(packs.map(([id, result]) => [id, result]));
      for (const [id, event] of events) {
        const task = tasks.get(id);
        const what = task === undefined ? undefined : info(task);
        if (task === undefined || what === undefined) continue;
        const result = results.get(id) ?? task.result;
        const base = { name: task.name, info: what };
        switch (event) {
          case 'suite-prepare':
            emit({ type: 'suite-start', ...base });
            break;
          case 'before-hook-start':
            if (task.type === 'suite') emit({ type: 'hook-start', ...base });
            break;
          case 'before-hook-end':
            if (task.type === 'suite') emit({ type: 'hook-end', ...base });
            break;
          case 'test-prepare':
            emit({ type: 'task-start', ...base });
            break;
          case 'test-finished':
          case 'test-cancel':
            emit({ type: 'task-end', ...base, ...stateOf(task, result) });
            break;
          case 'suite-finished':
          case 'suite-failed-early':
            emit({ type: 'suite-end', ...base, ...stateOf(task, result) });
            break;
        }
      }
    },
  };
  const files = await startTests([RUN_FILE], runner);
  const out: TaskOutcome[] = [];
  const collect = (t: Task, inherited: string[]) => {
    const what = info(t);
    // A suite whose beforeAll failed skips its tasks: its error is theirs.
    const errors = t.type === 'suite' ? [...inherited, ...messages(t.result)] : inherited;
    if (t.type === 'suite') {
      for (const c of t.tasks) collect(c, t.result?.state === 'fail' ? errors : inherited);
      return;
    }
    if (what === undefined) return;
    const s = stateOf(t, t.result);
    out.push({
      name: t.name,
      info: what,
      state: s.state === 'skip' && errors.length > 0 ? 'fail' : s.state,
      errors: [...errors, ...s.errors],
      ...(s.note === undefined ? {} : { note: s.note }),
      retryCount: s.retryCount,
      durationMs: s.durationMs,
    });
  };
  for (const f of files) {
    // An error outside any task (collection) is a bug of the tree: surface it.
    if (f.result?.state === 'fail' && f.tasks.length === 0) {
      throw new Error(`the run's tasks could not be collected: ${messages(f.result).join('; ')}`);
    }
    collect(f, []);
  }
  return out;
}

function stateOf(
  task: Task,
  result: Task['result'],
): { state: TaskState; errors: string[]; note?: string; retryCount: number; durationMs: number } {
  const raw = result?.state;
  const state: TaskState = raw === 'pass' ? 'pass' : raw === 'fail' ? 'fail' : 'skip';
  // The runner sets `note` on skipped results (context.skip(note)); its types leave it out.
  const note =
    (result as { note?: string } | undefined)?.note ?? (task.mode === 'skip' ? 'skipped' : undefined);
  return {
    state,
    errors: messages(result),
    ...(note === undefined ? {} : { note }),
    retryCount: result?.retryCount ?? 0,
    durationMs: Math.round(result?.duration ?? 0),
  };
}
