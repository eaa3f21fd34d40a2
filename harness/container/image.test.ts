/**
 * Images from Debian's archive, for real: content tags (pure), a real first build of a small image
 * with two concurrent callers (one builds, the other waits and reuses it), an interrupted build
 * that leaves no tagged image, `corematrix image build` run twice (the second reuses: its time is
 * printed, not asserted), and the one-line error when no engine answers.
 *
 * Needs a Docker engine (.ci/run starts dockerd) and mmdebstrap; skipped, saying so, otherwise.
 */

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCorematrix } from '../test-support/cli.js';
import { testCacheRoot } from '../test-support/kernels.js';
import { connectEngine, engineAvailable } from './engine.js';
import { checkImageSpec, ensureImage, type ImageSpec, imageExists, imageTag } from './image.js';
import { EXECUTOR_IMAGE, imagesByName, matrixImages } from './images.js';

const repo = path.join(import.meta.dirname, '..', '..');
const engine = await engineAvailable();
const mmdebstrap = spawnSync('mmdebstrap', ['--version']).status === 0;
const missing = [
  ...(engine.ok ? [] : [engine.reason]),
  ...(mmdebstrap ? [] : ['mmdebstrap is not installed']),
];
const why = missing.length === 0 ? '' : ` (skipped: ${missing.join('; ')})`;
const distReady = existsSync(path.join(repo, 'dist', 'container', 'image.js'));

describe('content tags', () => {
  const built = { inReleaseSha256: 'a'.repeat(64), builder: 'mmdebstrap 1.3.5' };
  const spec: ImageSpec = { name: 'clang-14', suite: 'bookworm', packages: ['clang-14', 'llvm-14'] };
  it('name the image and change with what it is built from', () => {
    const tag = imageTag(spec, built);
    expect(tag).toMatch(/^corematrix\/clang-14:[0-9a-f]{16}$/);
    expect(imageTag({ ...spec, packages: ['llvm-14', 'clang-14', 'clang-14'] }, built)).toBe(tag);
    const others = [
      imageTag({ ...spec, packages: ['clang-14'] }, built),
      imageTag({ ...spec, suite: 'trixie' }, built),
      imageTag(spec, { ...built, inReleaseSha256: 'b'.repeat(64) }),
      imageTag(spec, { ...built, builder: 'mmdebstrap 1.4.0' }),
    ];
    expect(new Set([tag, ...others]).size).toBe(5);
  });

  it('refuse specs that cannot name an image or a package', () => {
    expect(() => checkImageSpec({ ...spec, name: 'Clang 14' })).toThrow(/not an image name/);
    expect(() => checkImageSpec({ ...spec, suite: 'Bookworm!' })).toThrow(/not a Debian suite name/);
    expect(() => checkImageSpec({ ...spec, packages: ['clang;rm'] })).toThrow(/not a Debian package name/);
    expect(() => checkImageSpec(EXECUTOR_IMAGE)).not.toThrow();
  });

  it('a matrix needs the executor image only with executor: container', () => {
    const matrix = { executor: 'local', file: '/m.yaml' } as Parameters<typeof matrixImages>[0];
    expect(matrixImages(matrix)).toEqual([]);
    expect(matrixImages({ ...matrix, executor: 'container' })).toEqual([EXECUTOR_IMAGE]);
    expect(imagesByName(['executor'])).toEqual([EXECUTOR_IMAGE]);
    expect(() => imagesByName(['nope'], matrix)).toThrow(/no image named "nope"; known images: executor/);
  });
});

describe.skipIf(missing.length > 0)(`images from Debian's archive, for real${why}`, () => {
  const imagesDir = path.join(testCacheRoot(), 'images');
  /** The build directories of process `pid` (build-<host>_<pid>_<start>-<random>). */
  const buildDirsOf = (pid: number | undefined) =>
    existsSync(imagesDir)
      ? readdirSync(imagesDir).filter((n) => n.startsWith('build-') && n.split('_')[1] === String(pid))
      : [];
  let interruptedPid: number | undefined;

  async function removeImage(repoName: string): Promise<void> {
    const { docker } = await connectEngine();
    for (const image of await docker.listImages({ filters: { reference: [repoName] } }))
      await docker.getImage(image.Id).remove({ force: true });
  }

  async function tagsOf(repoName: string): Promise<string[]> {
    const { docker } = await connectEngine();
    return (await docker.listImages({ filters: { reference: [repoName] } })).flatMap((i) => i.RepoTags ?? []);
  }

  it.skipIf(!distReady)(
    'an interrupted build leaves no tagged image',
    async () => {
      const spec: ImageSpec = {
        name: 'corematrix-test-interrupted',
        suite: 'bookworm',
        packages: ['busybox'],
      };
      await removeImage(`corematrix/${spec.name}`);
      const script = `
      const { ensureImage } = await import(${JSON.stringify(path.join(repo, 'dist', 'container', 'image.js'))});
      await ensureImage(${JSON.stringify(spec)}, { cache: ${JSON.stringify(testCacheRoot())} });
    `;
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
        cwd: repo,
        stdio: 'ignore',
      });
      const exited = new Promise<string | null>((resolve) => child.on('exit', (_c, s) => resolve(s)));
      // Interrupt it once mmdebstrap is at work in its build directory.
      interruptedPid = child.pid;
      const deadline = Date.now() + 60_000;
      while (buildDirsOf(child.pid).length === 0) {
        if (Date.now() > deadline) throw new Error('the build never started');
        await new Promise((r) => setTimeout(r, 100));
      }
      await new Promise((r) => setTimeout(r, 3000));
      child.kill('SIGINT');
      expect(await exited).toBe('SIGINT');
      expect(await tagsOf(`corematrix/${spec.name}`)).toEqual([]);
      // mmdebstrap was stopped and unmounted everything, so its directory went with it.
      expect(buildDirsOf(child.pid)).toEqual([]);
    },
    120_000,
  );

  it('a first build, with a second caller at the same time: one builds, both get the image', async () => {
    const spec: ImageSpec = { name: 'corematrix-test-base', suite: 'bookworm', packages: [] };
    await removeImage(`corematrix/${spec.name}`);
    const [a, b] = await Promise.all([ensureImage(spec), ensureImage(spec)]);
    expect(a.tag).toBe(b.tag);
    expect([a.built, b.built].sort()).toEqual([false, true]);
    expect(await imageExists(await connectEngine(), a.tag)).toBe(true);
    // What it is: a Debian root filesystem of that suite, runnable.
    const run = spawnSync('docker', [
      'run',
      '--rm',
      '--network',
      'none',
      a.tag,
      'cat',
      '/etc/debian_version',
    ]);
    expect(run.stdout.toString()).toMatch(/^12\./);
    console.log(`first build of ${a.tag}: ${Math.max(a.ms, b.ms)} ms`);
    // The interrupted build's directory is gone: removed as it was interrupted (or swept since).
    expect(buildDirsOf(interruptedPid)).toEqual([]);
  }, 600_000);

  it('`corematrix image build` reuses the image the second time', async () => {
    const first = await runCorematrix('image', 'build', 'executor');
    expect(first.status, first.stderr).toBe(0);
    const second = await runCorematrix('image', 'build', 'executor');
    expect(second.status, second.stderr).toBe(0);
    const [tag1] = first.stdout.split('\t');
    const [tag2, how, time] = second.stdout.trim().split('\t');
    expect(tag2).toBe(tag1);
    expect(tag2).toMatch(/^corematrix\/executor:[0-9a-f]{16}$/);
    expect(how).toBe('reused');
    console.log(`image build executor: first ${first.stdout.trim()}; second ${how} in ${time}`);
  }, 600_000);

  it('an unknown image name: one line, exit 2', async () => {
    const r = await runCorematrix('image', 'build', 'nope');
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^corematrix: .*matrix\.yaml: no image named "nope"; known images: executor\n$/);
  });
});

/** Runs the CLI in a mount namespace where the engine's socket is hidden (root only). */
const canHide =
  process.getuid?.() === 0 && spawnSync('unshare', ['--mount', 'true']).status === 0 && distReady;

describe.skipIf(!canHide)('no engine', () => {
  it('one line naming where the engine was looked for, exit 2', () => {
    const env = { ...process.env };
    delete env.DOCKER_HOST;
    const r = spawnSync(
      'unshare',
      [
        '--mount',
        '--propagation',
        'private',
        'sh',
        '-c',
        `mount -t tmpfs tmpfs /run && exec ${JSON.stringify(process.execPath)} bin/corematrix.js image build executor`,
      ],
      { cwd: repo, env },
    );
    expect(r.status).toBe(2);
    expect(r.stderr.toString()).toBe(
      'corematrix: /var/run/docker.sock: no Docker engine: start dockerd or set DOCKER_HOST\n',
    );
    expect(r.stdout.toString()).toBe('');
  });
});

describe.skipIf(!distReady)('DOCKER_HOST naming a socket nobody listens on', () => {
  it('is an error naming it, not the default engine (which answers here)', () => {
    const dead = `unix://${path.join(os.tmpdir(), `corematrix-no-engine-${process.pid}.sock`)}`;
    const r = spawnSync(process.execPath, ['bin/corematrix.js', 'image', 'build', 'executor'], {
      cwd: repo,
      env: { ...process.env, DOCKER_HOST: dead },
    });
    expect(r.stderr.toString()).toBe(
      `corematrix: ${dead}: no Docker engine: start dockerd or set DOCKER_HOST\n`,
    );
    expect(r.status).toBe(2);
  });
});
