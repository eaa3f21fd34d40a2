/**
 * The process-end registry in real child processes: a cleanup runs on exit and on each signal, the
 * signal then ends the process as it would have (also with signal-exit v3 listening, as it does
 * once testcontainers is loaded), and a released cleanup never runs.
 */
import { promises as fs } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeScript } from './test-support/kernels.js';

const registry = path.join(import.meta.dirname, 'process-cleanup.ts');
// The signal-exit v3 that testcontainers' dependencies load (signal-exit v4 at the top is another API).
const signalExitV3 = createRequire(createRequire(import.meta.url).resolve('proper-lockfile')).resolve(
  'signal-exit',
);

let dir: string;
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'process-cleanup-'));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

/**
 * A child (argv: log file, load signal-exit v3 "yes"/"no", exit at once "yes"/"no") that
 * registers cleanups appending their names to the log, releases "released", says "ready" and then
 * waits (or exits 3 by itself).
 */
function childScript(): Promise<string> {
  return nodeScript(
    'process-cleanup',
    `
    import { appendFileSync } from "node:fs";
    import { createRequire } from "node:module";
    import { atProcessEnd } from "${registry}";
    const [log, signalExit, exit] = process.argv.slice(2);
    if (signalExit === "yes") createRequire(import.meta.url)(${JSON.stringify(signalExitV3)})(() => {});
    atProcessEnd(() => appendFileSync(log, "first\\n"));
    atProcessEnd(() => { throw new Error("a failing cleanup does not stop the others"); });
    atProcessEnd(() => appendFileSync(log, "released\\n"))();
    atProcessEnd(() => appendFileSync(log, "last\\n"));
    if (exit === "yes") process.exit(3);
    const keepAlive = setInterval(() => {}, 1 << 30);
    console.log("ready");
    `,
  );
}

async function runChild(
  name: string,
  options: { signalExit: boolean; exit: boolean; signal?: NodeJS.Signals },
): Promise<{ exitCode: number | undefined; signal: string | undefined; log: string }> {
  const log = path.join(dir, `${name}.log`);
  const flags = [options.signalExit, options.exit].map((on) => (on ? 'yes' : 'no'));
  const p = execa(process.execPath, [await childScript(), log, ...flags], { reject: false, stdin: 'ignore' });
  if (options.signal !== undefined) {
    const signal = options.signal;
    await new Promise<void>((resolve, reject) => {
      p.stdout.on('data', (b: Buffer) => {
        if (b.toString().includes('ready')) resolve();
      });
      p.catch(reject);
    });
    p.kill(signal);
  }
  const r = await p;
  const text = await fs.readFile(log, 'utf8').catch(() => '');
  return { exitCode: r.exitCode, signal: r.signal, log: text };
}

describe('atProcessEnd', () => {
  it('runs the pending cleanups in order on exit, keeping the exit code', async () => {
    const r = await runChild('exit', { signalExit: false, exit: true });
    expect(r).toEqual({ exitCode: 3, signal: undefined, log: 'first\nlast\n' });
  });

  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    it(`runs them on ${signal}, then the process ends by ${signal}`, async () => {
      const r = await runChild(signal, { signalExit: false, exit: false, signal });
      expect(r.signal).toBe(signal);
      expect(r.log).toBe('first\nlast\n');
    });
  }

  it('ends the process by the signal with signal-exit v3 listening too', async () => {
    const r = await runChild('signal-exit', { signalExit: true, exit: false, signal: 'SIGTERM' });
    expect(r.signal).toBe('SIGTERM');
    expect(r.log).toBe('first\nlast\n');
  });
});
