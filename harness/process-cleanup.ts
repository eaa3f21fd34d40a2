/**
 * What the harness must undo if it ends while work is under way: QEMU process groups, containers,
 * image builds. One registry for the whole process, so that one signal handler decides how the
 * process ends (two modules each re-raising or not would disagree on it).
 *
 * Registered cleanups run synchronously, in registration order, when the process exits (the
 * 'exit' event: no event loop is left, so they must not await) or receives SIGINT, SIGTERM or
 * SIGHUP. After a signal the process then ends as the signal would have ended it without this
 * handler: the handlers are removed and the signal raised again. Always raised again, not only
 * when no other listener is left: testcontainers loads signal-exit v3, whose listener only acts
 * when it is the last one; it was not the last when the signal came (this one was there too), so
 * without the second signal a signalled harness would run on and exit 0 once idle. A SIGKILLed
 * process runs nothing; the container engine sweeps what such a process left (engine.ts).
 */

const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/** Pending cleanups; an entry each, so one function registered twice runs twice and is released once each. */
const pending = new Set<{ cleanup: () => void }>();

/**
 * Runs `cleanup` (synchronous, best effort: what it throws is ignored) if the process exits or
 * is signalled before the returned release is called. Release is idempotent.
 */
export function atProcessEnd(cleanup: () => void): () => void {
  const entry = { cleanup };
  pending.add(entry);
  install();
  return () => {
    pending.delete(entry);
    if (pending.size === 0) uninstall();
  };
}

/** How many cleanups are pending (tests check that finished work released its own). */
export function pendingCleanups(): number {
  return pending.size;
}

function runAll(): void {
  const entries = [...pending];
  pending.clear();
  for (const { cleanup } of entries) {
    try {
      cleanup();
    } catch {
      // Best effort: the process is going anyway, and the other cleanups must still run.
    }
  }
}

function onSignal(signal: NodeJS.Signals): void {
  runAll();
  uninstall();
  process.kill(process.pid, signal);
}

let installed = false;

function install(): void {
  if (installed) return;
  installed = true;
  process.on('exit', runAll);
  for (const s of SIGNALS) process.on(s, onSignal);
}

function uninstall(): void {
  if (!installed) return;
  installed = false;
  process.off('exit', runAll);
  for (const s of SIGNALS) process.off(s, onSignal);
}
