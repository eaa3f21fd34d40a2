/**
 * The local Docker engine, reached through testcontainers (which finds it as the docker CLI does:
 * DOCKER_HOST, the docker context, then the usual sockets).
 *
 * testcontainers' own cleanup (the Ryuk reaper) runs in a container whose image comes from a
 * registry; corematrix runs where no registry is reachable, so Ryuk is disabled and corematrix cleans
 * up after itself instead: every container it starts carries an owner label (host, pid and the
 * process's start time, so a reused pid is not mistaken for its owner), is removed when it ends, and
 * is removed when the process exits or is signalled (SIGINT/SIGTERM/SIGHUP: process-cleanup.ts). A SIGKILLed process
 * cannot clean up; the next corematrix process to connect sweeps the containers of owners that are
 * gone.
 */

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import type Dockerode from 'dockerode';
import { UsageError } from '../errors.js';
import { atProcessEnd } from '../process-cleanup.js';

/** Label naming the process that owns a container: `<host>/<pid>/<start time>`. */
export const OWNER_LABEL = 'corematrix.owner';
/** Label on everything corematrix creates (containers and images), for people and sweeps. */
export const CREATED_BY_LABEL = 'corematrix.created-by';

export const NO_ENGINE_MESSAGE = 'no Docker engine: start dockerd or set DOCKER_HOST';

export interface Engine {
  docker: Dockerode;
  /** The engine's version, e.g. "20.10.24+dfsg1". */
  serverVersion: string;
}

/** The process's start time in clock ticks since boot (field 22 of /proc/PID/stat), or "?" when unknown. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // The command name (field 2) may hold spaces and parentheses: count fields after its last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19];
  } catch {
    return undefined;
  }
}

/** This process's owner label value. */
export function ownerId(pid = process.pid): string {
  return `${os.hostname()}/${pid}/${processStartTime(pid) ?? '?'}`;
}

/**
 * Whether the owner a label names is gone: same host, and no process with that pid and start time.
 * Owners on other hosts (a shared remote engine) are never judged gone.
 */
export function ownerGone(owner: string, host = os.hostname()): boolean {
  const m = /^(.*)\/(\d+)\/([^/]+)$/.exec(owner);
  if (m === null || m[1] !== host) return false;
  const start = processStartTime(Number(m[2]));
  return start === undefined || (m[3] !== '?' && start !== m[3]);
}

/** Where the engine was looked for, for the error line. */
function engineAddress(): string {
  const host = process.env.DOCKER_HOST;
  return host !== undefined && host !== '' ? host : '/var/run/docker.sock';
}

/** The socket a `unix://PATH` DOCKER_HOST names (undefined for other or no DOCKER_HOST). */
export function wantedSocket(dockerHost: string | undefined): string | undefined {
  return dockerHost?.startsWith('unix://') === true ? dockerHost.slice('unix://'.length) : undefined;
}

let connecting: Promise<Engine> | undefined;

/**
 * Connects to the local engine once per process (the answer is kept), sweeping the leftovers of
 * dead corematrix processes. Throws a UsageError "no Docker engine: …" when none answers.
 */
export function connectEngine(): Promise<Engine> {
  connecting ??= connect().catch((e: unknown) => {
    connecting = undefined;
    throw e;
  });
  return connecting;
}

async function connect(): Promise<Engine> {
  process.env.TESTCONTAINERS_RYUK_DISABLED = 'true';
  const { getContainerRuntimeClient } = await import('testcontainers');
  let client: Awaited<ReturnType<typeof getContainerRuntimeClient>>;
  try {
    client = await getContainerRuntimeClient();
  } catch (e) {
    throw new UsageError(NO_ENGINE_MESSAGE, { file: engineAddress(), cause: e });
  }
  // testcontainers tries DOCKER_HOST first but falls back to the default socket when nothing
  // answers there: a user who named an engine must get that one or an error, not another one.
  const wanted = wantedSocket(process.env.DOCKER_HOST);
  const modem = client.container.dockerode.modem as { socketPath?: unknown };
  if (wanted !== undefined && modem.socketPath !== wanted) {
    throw new UsageError(NO_ENGINE_MESSAGE, { file: engineAddress() });
  }
  const engine: Engine = {
    docker: client.container.dockerode,
    serverVersion: String(client.info.containerRuntime.serverVersion),
  };
  await sweepLeftovers(engine);
  return engine;
}

/** Whether an engine answers (tests skip on false, naming why). */
export async function engineAvailable(): Promise<{ ok: true } | { ok: false; reason: string }> {
  try {
    await connectEngine();
    return { ok: true };
  } catch (e) {
    return { ok: false, reason: e instanceof UsageError ? e.describe() : String(e) };
  }
}

/** Removes containers whose corematrix owner process is gone. Returns their ids. */
export async function sweepLeftovers(engine: Engine): Promise<string[]> {
  const containers = await engine.docker.listContainers({
    all: true,
    filters: { label: [OWNER_LABEL] },
  });
  const gone = containers.filter((c) => ownerGone(c.Labels[OWNER_LABEL] ?? ''));
  await Promise.all(
    gone.map((c) =>
      engine.docker
        .getContainer(c.Id)
        .remove({ force: true })
        .catch(() => undefined),
    ),
  );
  return gone.map((c) => c.Id);
}

// --- Containers of this process, removed when it goes ---------------------------------------------

/**
 * Runs `cleanup` (synchronous) if the process exits or is signalled before the returned function
 * is called (an image build); the signal then ends the process as it would have without a handler.
 */
export { atProcessEnd as atInterrupt } from '../process-cleanup.js';

/** Containers of this process → what to undo on the host once they are gone (their temporary files). */
const owned = new Map<string, (() => void) | undefined>();
/** Container creations under way (their ids may not be known yet). */
let creating = 0;
/** The release of `removeOwnedNow` at the process's end, while there is anything to remove. */
let releaseAtEnd: (() => void) | undefined;

function removeAtEnd(): void {
  releaseAtEnd ??= atProcessEnd(removeOwnedNow);
}

function releaseIfIdle(): void {
  if (owned.size > 0 || creating > 0) return;
  releaseAtEnd?.();
  releaseAtEnd = undefined;
}

/**
 * Synchronous removal, for the 'exit' event and signals (no event loop left to run requests on):
 * the docker CLI, which reaches the engine as testcontainers does.
 */
function removeOwnedNow(): void {
  releaseAtEnd = undefined;
  const entries = [...owned];
  owned.clear();
  const ids = entries.map(([id]) => id);
  if (creating > 0) {
    // A container may exist whose id this process has not heard yet: find it by its owner label.
    try {
      const listed = execFileSync(
        'docker',
        ['ps', '--all', '--quiet', '--no-trunc', '--filter', `label=${OWNER_LABEL}=${ownerId()}`],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 20_000 },
      );
      ids.push(...listed.split('\n').filter((id) => id !== '' && !ids.includes(id)));
    } catch {
      // Best effort, as below.
    }
  }
  if (ids.length === 0) return;
  try {
    execFileSync('docker', ['rm', '--force', ...ids], { stdio: 'ignore', timeout: 60_000 });
  } catch {
    // Best effort: the next corematrix process sweeps what is left.
  }
  for (const [, cleanup] of entries) {
    try {
      cleanup?.();
    } catch {
      // Best effort: the process is going anyway.
    }
  }
}

/**
 * Registers a container for removal when this process exits or is signalled; `cleanup`
 * (synchronous) then runs too, after the removal.
 */
export function own(id: string, cleanup?: () => void): void {
  owned.set(id, cleanup);
  removeAtEnd();
}

/**
 * Runs `create` (which creates and starts a container labelled with `ownerLabels()`) so that an
 * exit or signal while it runs also removes the container the engine made but has not named yet.
 */
export async function whileCreating<T>(create: () => Promise<T>): Promise<T> {
  creating++;
  removeAtEnd();
  try {
    return await create();
  } finally {
    creating--;
    releaseIfIdle();
  }
}

/** Removes a container now (idempotent) and forgets it. */
export async function removeOwned(engine: Engine, id: string): Promise<void> {
  try {
    await engine.docker.getContainer(id).remove({ force: true });
  } catch (e) {
    const status = (e as { statusCode?: number }).statusCode;
    // 404: already gone; 409: removal already in progress.
    if (status !== 404 && status !== 409) throw e;
  } finally {
    owned.delete(id);
    releaseIfIdle();
  }
}

/** Ids of the containers this process owns now (tests check none is left). */
export function ownedContainers(): string[] {
  return [...owned.keys()];
}

/** The labels every corematrix container carries. */
export function ownerLabels(): Record<string, string> {
  return { [OWNER_LABEL]: ownerId(), [CREATED_BY_LABEL]: 'corematrix' };
}
