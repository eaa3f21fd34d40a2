/**
 * The container executor: each VM's QEMU runs in a container of the executor image (QEMU from
 * Debian, built by image.ts), started with testcontainers. The container sees only what the VM
 * needs, at the host's paths so QEMU's command line stays as it is: the kernel and the initramfs
 * (which holds the load plan) bind-mounted read-only, the directory of the result ports writable
 * (QEMU writes the guest's ttyS1… there; the harness reads them back after the VM). No network.
 * /dev/kvm is passed through when the VM runs under KVM (the harness's probe decided so).
 *
 * The container runs as the harness's user, so the result files are the harness's to read and
 * remove. Its console is QEMU's stdout, read from the container's log stream; its exit is the
 * container's. The container is removed when the VM ends, when the harness kills the VM (timeout,
 * abort), and when the harness exits or is signalled (engine.ts). As a backstop for a harness
 * that is SIGKILLed, QEMU runs under coreutils' `timeout` with a bit more than the VM's own time.
 */

import { promises as fs } from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { GenericContainer } from 'testcontainers';
import type { QemuLaunch, QemuProcess, VmExecutor } from '../vm/qemu.js';
import { connectEngine, type Engine, own, ownerLabels, removeOwned, whileCreating } from './engine.js';
import { type EnsureImageOptions, ensureImage } from './image.js';
import { EXECUTOR_IMAGE } from './images.js';

export interface ContainerExecutorOptions {
  /** The image to run (a tag); default: the executor image, built or reused by ensureImage. */
  image?: string;
  /** How the executor image is ensured when `image` is not given. */
  ensure?: EnsureImageOptions;
}

/** How long the container outlives the VM's own time limit before its `timeout` kills QEMU. */
const BACKSTOP_EXTRA_S = 30;

/** A testcontainers container that hands its id to the owner registry as soon as it exists. */
class VmContainer extends GenericContainer {
  /** The container's id once the engine created it. */
  createdId: string | undefined;

  constructor(
    image: string,
    private readonly cleanup: (() => void) | undefined,
  ) {
    super(image);
  }

  protected override async containerCreated(containerId: string): Promise<void> {
    this.createdId = containerId;
    own(containerId, this.cleanup);
  }

  withDevices(devices: string[]): this {
    this.hostConfig.Devices = devices.map((d) => ({
      PathOnHost: d,
      PathInContainer: d,
      CgroupPermissions: 'rwm',
    }));
    return this;
  }

  withGroups(groups: string[]): this {
    this.hostConfig.GroupAdd = groups;
    return this;
  }
}

/** The bind mounts of a launch: each file read at its path, read-only; each written file's directory, writable. */
export function launchMounts(launch: Pick<QemuLaunch, 'reads' | 'writes'>): {
  source: string;
  target: string;
  mode: 'ro' | 'rw';
}[] {
  const writable = [...new Set(launch.writes.map((f) => path.dirname(path.resolve(f))))];
  const readOnly = [...new Set(launch.reads.map((f) => path.resolve(f)))];
  return [
    ...writable.map((d) => ({ source: d, target: d, mode: 'rw' as const })),
    ...readOnly.map((f) => ({ source: f, target: f, mode: 'ro' as const })),
  ];
}

/** Runs VMs in containers of the executor image (see the file's comment). */
export function containerExecutor(options: ContainerExecutorOptions = {}): VmExecutor {
  let image: Promise<string> | undefined;
  const imageTag = (): Promise<string> => {
    image ??=
      options.image === undefined
        ? ensureImage(EXECUTOR_IMAGE, options.ensure).then((i) => i.tag)
        : Promise.resolve(options.image);
    return image;
  };
  return {
    name: 'container',
    async start(args, launch) {
      const [engine, tag] = await Promise.all([connectEngine(), imageTag()]);
      return startVmContainer(engine, tag, args, launch);
    },
  };
}

async function startVmContainer(
  engine: Engine,
  tag: string,
  args: string[],
  launch: QemuLaunch,
): Promise<QemuProcess> {
  const backstop = Math.ceil(launch.timeoutMs / 1000) + BACKSTOP_EXTRA_S;
  let container = new VmContainer(tag, launch.onHarnessExit)
    .withEntrypoint(['timeout', '--kill-after=5', String(backstop), 'qemu-system-x86_64'])
    .withCommand(args)
    .withBindMounts(launchMounts(launch))
    .withLabels(ownerLabels())
    .withNetworkMode('none')
    .withUser(`${process.getuid?.() ?? 0}:${process.getgid?.() ?? 0}`);
  if (launch.accel === 'kvm') {
    const kvm = await fs.stat('/dev/kvm');
    container = container.withDevices(['/dev/kvm']).withGroups([String(kvm.gid)]);
  }
  let started: Awaited<ReturnType<VmContainer['start']>>;
  try {
    started = await whileCreating(() => container.start());
  } catch (e) {
    // Not started (a bad mount, a missing image): QEMU never ran; say why as QEMU would.
    if (container.createdId !== undefined)
      await removeOwned(engine, container.createdId).catch(() => undefined);
    const message = e instanceof Error ? e.message : String(e);
    return failedLaunch(`the executor container did not start: ${message}`);
  }
  const id = started.getId();
  const handle = engine.docker.getContainer(id);
  const stdout = new PassThrough();
  const stderrChunks: Buffer[] = [];
  const stderr = new PassThrough();
  stderr.on('data', (b: Buffer) => {
    if (stderrChunks.length < 256) stderrChunks.push(b);
  });
  // The whole log from the container's start: nothing QEMU printed before this call is lost.
  const logs = (await handle.logs({ follow: true, stdout: true, stderr: true })) as NodeJS.ReadableStream;
  engine.docker.modem.demuxStream(logs, stdout, stderr);
  const logsEnded = new Promise<void>((resolve) => {
    logs.on('end', resolve);
    logs.on('close', resolve);
    logs.on('error', () => resolve());
  });
  const pid = ((await handle.inspect().catch(() => undefined))?.State?.Pid as number | undefined) ?? -1;
  let killed = false;
  const exited = (async () => {
    let status: number | undefined;
    try {
      status = ((await handle.wait()) as { StatusCode: number }).StatusCode;
    } catch {
      status = undefined;
    }
    // The log stream ends with the container; give it a moment to deliver its last bytes.
    await Promise.race([logsEnded, new Promise((r) => setTimeout(r, 5000))]);
    stdout.end();
    stderr.end();
    await removeOwned(engine, id).catch(() => undefined);
    const text = Buffer.concat(stderrChunks).toString('utf8');
    // 137: SIGKILLed (by us, or by the backstop's --kill-after); 124: the backstop's timeout.
    if (killed || status === 137 || status === undefined)
      return { exitCode: undefined, signal: 'SIGKILL', stderr: text };
    if (status === 124) return { exitCode: undefined, signal: 'SIGTERM', stderr: text };
    return { exitCode: status, signal: undefined, stderr: text };
  })();
  return {
    pid,
    onConsole(listener) {
      stdout.on('data', listener);
    },
    kill() {
      if (killed) return;
      killed = true;
      handle.kill().catch(() => undefined);
    },
    exited,
  };
}

/** A QEMU that never ran: what `spawnQemu` returns when the binary cannot be started. */
function failedLaunch(message: string): QemuProcess {
  return {
    pid: -1,
    onConsole() {},
    kill() {},
    exited: Promise.resolve({ exitCode: 127, signal: undefined, stderr: message }),
  };
}
