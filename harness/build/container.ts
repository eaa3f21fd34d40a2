/**
 * A Debian suite's clang, run in a container of its toolchain image (images.ts, built by
 * harness/container's ensureImage and reused by its content tag). One container per toolchain and
 * build, started on the first compilation (a build served from the cache starts none) and removed
 * at the end, or by harness/container's cleanup when the process is interrupted. The sources and
 * include directories are bind-mounted read-only and the output directory writable, each at its own
 * path, so clang's messages name the files as they are on the host; clang runs as the calling user,
 * so the objects are theirs.
 */

import { promises as fs } from 'node:fs';
import { connectEngine, own, ownerLabels, removeOwned } from '../container/engine.js';
import { type EnsureImageOptions, ensureImage } from '../container/image.js';
import type { Mounts } from './build.js';
import { type DebianCompiler, toolchainImageSpec } from './images.js';
import type { Toolchain } from './toolchain.js';

export async function containerToolchain(
  c: DebianCompiler,
  mounts: Mounts,
  imageOptions: EnsureImageOptions = {},
): Promise<Toolchain> {
  const image = await ensureImage(toolchainImageSpec(c), imageOptions);
  const user = `${process.getuid?.() ?? 0}:${process.getgid?.() ?? 0}`;
  const start = async () => {
    const engine = await connectEngine();
    // After connectEngine: it turns testcontainers' registry-pulled reaper off before first use.
    const { GenericContainer } = await import('testcontainers');
    await fs.mkdir(mounts.writable, { recursive: true });
    const container = await new GenericContainer(image.tag)
      .withLabels(ownerLabels())
      .withBindMounts([
        ...mounts.readOnly.map((d) => ({ source: d, target: d, mode: 'ro' as const })),
        { source: mounts.writable, target: mounts.writable, mode: 'rw' as const },
      ])
      .withCommand(['sleep', 'infinity'])
      .start();
    own(container.getId());
    return { container, engine };
  };
  let started: ReturnType<typeof start> | undefined;
  return {
    name: c.name,
    identity: `image ${image.tag} ${c.clang}`,
    async clang(args, cwd) {
      started ??= start();
      const { container } = await started;
      const r = await container.exec([c.clang, ...args], { workingDir: cwd, user });
      // Through exec, a signal shows as 128 + its number (137: SIGKILL, the OOM killer's).
      const killed = r.exitCode > 128;
      return {
        exitCode: r.exitCode,
        output: r.output,
        status: killed ? `was killed by signal ${r.exitCode - 128}` : `exited with status ${r.exitCode}`,
        killed,
      };
    },
    async close() {
      if (started === undefined) return;
      const { container, engine } = await started;
      await removeOwned(engine, container.getId());
    },
  };
}
