import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { isCorematrixError } from '../errors.js';
import { parseKernelConfig } from '../kernels/config.js';
import {
  type CachedKernel,
  DEFAULT_DEBIAN_KERNELS,
  defaultDebianKernels,
  testCacheRoot,
} from '../test-support/kernels.js';
import { debianSpec, kernelSource, matrixKernelSources, resolutionFile } from './kernels.js';
import { loadMatrix, parseMatrix } from './load.js';

let dir: string;
let kernels: CachedKernel[];

beforeAll(async () => {
  kernels = await defaultDebianKernels();
  dir = mkdtempSync(path.join(os.tmpdir(), 'corematrix-sources-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function matrixIn(text: string) {
  const file = path.join(dir, 'matrix.yaml');
  writeFileSync(file, text);
  return loadMatrix(file, { checkCases: false });
}

describe('Debian kernels', () => {
  test('fetchDebianKernel pins each default spec where the offline lookup reads it', () => {
    for (const { spec } of DEFAULT_DEBIAN_KERNELS) {
      const full = { ...spec, flavor: 'cloud-amd64' };
      expect(existsSync(resolutionFile(testCacheRoot(), full)), spec.suite).toBe(true);
    }
  });

  test('offline, each cached kernel resolves to its entry, BTF and config', async () => {
    const m = parseMatrix(
      `kernels:\n${DEFAULT_DEBIAN_KERNELS.map(
        (k) =>
          `  - name: ${k.name}\n    suite: ${k.spec.suite}\n${k.spec.version === undefined ? '' : `    version: "${k.spec.version}"\n`}`,
      ).join('')}cases: [x]\n`,
      path.join(dir, 'm.yaml'),
      { checkCases: false },
    );
    for (const source of matrixKernelSources(m, { cache: testCacheRoot() })) {
      const k = await source.open();
      const cached = kernels.find((c) => c.name === source.name)!;
      expect(k.state, source.name).toBe('cached');
      expect(k.release).toBe(cached.release);
      expect(k.entry).toBe(cached.dir);
      expect(k.btfFile).toBe(cached.btf);
      expect(Buffer.from(k.btf!.raw).equals(readFileSync(cached.btf!))).toBe(true);
      expect(k.config?.options.size).toBe(parseKernelConfig(readFileSync(cached.config)).options.size);
      expect(k.tiers).toEqual(['static', 'vm']);
      expect(k.package).toMatch(/^linux-image-/);
    }
  });

  test('an empty cache shows every Debian kernel as not fetched, without apt', async () => {
    const m = matrixIn('kernels:\n  - name: b\n    suite: bookworm\n    version: "6.1"\ncases: [x]\n');
    const k = await matrixKernelSources(m, { cache: path.join(dir, 'empty-cache') })[0]!.open();
    expect(k).toMatchObject({ state: 'not fetched', cached: false, detail: 'never fetched' });
    expect(k.btf).toBeUndefined();
  });

  test('a corrupted cached file shows as corrupt', async () => {
    const cache = path.join(dir, 'corrupt-cache');
    const bookworm = kernels.find((k) => k.suite === 'bookworm')!;
    const spec = debianSpec({
      kind: 'debian',
      name: 'b',
      at: { line: 1, column: 1 },
      suite: 'bookworm',
      flavor: 'cloud-amd64',
      version: '6.1',
    });
    const pinned = JSON.parse(readFileSync(resolutionFile(testCacheRoot(), spec), 'utf8')) as {
      entry: string;
    };
    execFileSync('mkdir', ['-p', path.dirname(resolutionFile(cache, spec)), path.join(cache, pinned.entry)]);
    copyFileSync(resolutionFile(testCacheRoot(), spec), resolutionFile(cache, spec));
    for (const f of ['vmlinuz', 'config', 'btf', 'meta.json'])
      copyFileSync(path.join(bookworm.dir, f), path.join(cache, pinned.entry, f));
    writeFileSync(path.join(cache, pinned.entry, 'config'), 'CONFIG_TAMPERED=y\n');
    const m = matrixIn('kernels:\n  - name: b\n    suite: bookworm\n    version: "6.1"\ncases: [x]\n');
    const k = await matrixKernelSources(m, { cache })[0]!.open();
    expect(k.state).toBe('corrupt');
    expect(k.detail).toContain('SHA-256');
  });
});

describe('local kernels', () => {
  test('files copied out of the Debian cache resolve to the same BTF, release and config', async () => {
    for (const cached of kernels) {
      const local = path.join(dir, cached.name);
      execFileSync('mkdir', ['-p', local]);
      copyFileSync(cached.vmlinuz, path.join(local, 'vmlinuz'));
      copyFileSync(cached.btf!, path.join(local, 'btf'));
      writeFileSync(path.join(local, 'config.gz'), gzipSync(readFileSync(cached.config)));
      const m = matrixIn(
        `kernels:
  - name: image-only
    vmlinuz: ${cached.name}/vmlinuz
    config: ${cached.name}/config.gz
  - name: btf-only
    btf: ${cached.name}/btf
  - name: both
    btf: ${cached.name}/btf
    vmlinuz: ${cached.name}/vmlinuz
cases: [x]
`,
      );
      const debianBtf = readFileSync(cached.btf!);
      const [imageOnly, btfOnly, both] = await Promise.all(matrixKernelSources(m).map((s) => s.open()));
      for (const k of [imageOnly!, btfOnly!, both!]) {
        expect(k.state).toBe('local');
        expect(k.cached).toBe(false);
        expect(Buffer.from(k.btf!.raw).equals(debianBtf), `${cached.name} ${k.name}`).toBe(true);
      }
      expect(imageOnly!.release).toBe(cached.release);
      expect(imageOnly!.releaseFrom).toBe('vmlinuz');
      expect(imageOnly!.btfSource?.container).toBe('bzimage');
      expect(imageOnly!.tiers).toEqual(['static', 'vm']);
      expect(imageOnly!.config?.options).toEqual(parseKernelConfig(readFileSync(cached.config)).options);
      expect(both!.release).toBe(cached.release);
      // Raw BTF names no release; with no image and no config there is none to tell.
      expect(btfOnly!.release).toBeUndefined();
      expect(btfOnly!.tiers).toEqual(['static']);
    }
  });

  test('a missing local file is an error naming the kernel, its line in the matrix and the file', async () => {
    const m = matrixIn('kernels:\n  - name: gone\n    btf: nowhere/btf\ncases: [x]\n');
    const error = await matrixKernelSources(m)[0]!
      .open()
      .catch((e: unknown) => e);
    expect(isCorematrixError(error)).toBe(true);
    const line = (error as { describe(): string }).describe();
    expect(line).toBe(
      `${path.join(dir, 'matrix.yaml')}:2:5: kernel gone: ${path.join(dir, 'nowhere/btf')}: cannot read the file: no such file`,
    );
    expect((error as { code: string }).code).toBe('usage');
  });
});

describe('the host kernel', () => {
  test('release is uname -r, the BTF has as many types as bpftool counts, the config is found', async () => {
    const k = await kernelSource({ kind: 'host', name: 'host', at: { line: 1, column: 1 } }).open();
    expect(k.release).toBe(execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim());
    expect(k.btfFile).toBe('/sys/kernel/btf/vmlinux');
    const dump = execFileSync('bpftool', ['btf', 'dump', 'file', '/sys/kernel/btf/vmlinux'], {
      encoding: 'utf8',
      maxBuffer: 1 << 30,
    });
    const lastId = Number(/^\[(\d+)\]/m.exec(dump.slice(dump.lastIndexOf('\n[') + 1))?.[1]);
    expect(k.btf!.typeCount - 1).toBe(lastId);
    expect(k.tiers).toEqual(['static']);
    const config = [`/boot/config-${k.release}`, '/proc/config.gz'].find((f) => existsSync(f));
    expect(k.configFile).toBe(config);
    if (config !== undefined) expect(k.config!.options.get('CONFIG_DEBUG_INFO_BTF')?.type).toBe('tristate');
  });

  test('with a vmlinuz it may run in the vm tier', async () => {
    const k = await kernelSource({
      kind: 'host',
      name: 'h',
      at: { line: 1, column: 1 },
      vmlinuz: '/x/vmlinuz',
    }).open({ read: false });
    expect(k.tiers).toEqual(['static', 'vm']);
    expect(k.btf).toBeUndefined();
  });

  test('a kernel without BTF is a usage error naming where BTF was looked for', async () => {
    const root = mkdtempSync(path.join(dir, 'root-'));
    const error = await kernelSource(
      { kind: 'host', name: 'h', at: { line: 1, column: 1 } },
      { host: { root } },
    )
      .open()
      .catch((e: unknown) => e);
    expect((error as Error).message).toContain('kernel h: ');
    expect((error as Error).message).toContain(`${root}/sys/kernel/btf/vmlinux: the running kernel`);
  });

  test('config from /boot/config-<release> before /proc/config.gz', async () => {
    const root = mkdtempSync(path.join(dir, 'root-'));
    execFileSync('mkdir', ['-p', `${root}/sys/kernel/btf`, `${root}/boot`, `${root}/proc`]);
    copyFileSync(kernels[0]!.btf!, `${root}/sys/kernel/btf/vmlinux`);
    writeFileSync(`${root}/proc/config.gz`, gzipSync('CONFIG_FROM_PROC=y\n'));
    const open = () =>
      kernelSource(
        { kind: 'host', name: 'h', at: { line: 1, column: 1 } },
        { host: { root, release: '9.9.9-test' } },
      ).open();
    expect((await open()).config!.options.has('CONFIG_FROM_PROC')).toBe(true);
    writeFileSync(`${root}/boot/config-9.9.9-test`, 'CONFIG_FROM_BOOT=y\n');
    const k = await open();
    expect(k.configFile).toBe(`${root}/boot/config-9.9.9-test`);
    expect(k.config!.options.has('CONFIG_FROM_BOOT')).toBe(true);
    expect(k.release).toBe('9.9.9-test');
  });
});
