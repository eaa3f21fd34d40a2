import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  type CachedKernel,
  DEFAULT_DEBIAN_KERNELS,
  defaultDebianKernels,
  nodeScript,
  testCacheRoot,
} from '../test-support/kernels.js';
import { inspectEntry } from './cache.js';
import {
  chooseImage,
  compareDebianVersions,
  fetchDebianKernel,
  type PackageInfo,
  parseImagePackageName,
  payloadPackages,
  pickTarMembers,
  resolveKernel,
  suiteApt,
  versionMatchesPrefix,
} from './debian.js';

const here = path.dirname(fileURLToPath(import.meta.url));

describe('Debian version order', () => {
  /** dpkg's own verdicts on many pairs, from one shell process. */
  async function dpkgCompare(pairs: [string, string][]): Promise<number[]> {
    const script =
      'while read -r a b; do if dpkg --compare-versions "$a" lt "$b"; then echo -1; ' +
      'elif dpkg --compare-versions "$a" eq "$b"; then echo 0; else echo 1; fi; done';
    const { stdout } = await execa('sh', ['-c', script], {
      input: pairs.map((p) => p.join(' ')).join('\n') + '\n',
    });
    return stdout.split('\n').map(Number);
  }

  test('agrees with dpkg --compare-versions on kernel-like and tricky versions', async () => {
    const versions = [
      '5.10.223-1',
      '6.1.176-1',
      '6.1.76-1',
      '6.12.117-1',
      '6.12.117-1+b1',
      '6.12.117-1~bpo12+1',
      '7.2.13-1',
      '7.2~rc3-1~exp1',
      '1:6.1-1',
      '6.1',
      '6.1.0',
      '6.1a-1',
      '6.1+really6.0-1',
      '6.1~-1',
      '0.0-0',
      '00.1-01',
    ];
    const pairs: [string, string][] = versions.flatMap((a) => versions.map((b): [string, string] => [a, b]));
    const expected = await dpkgCompare(pairs);
    expect(pairs.map(([a, b]) => Math.sign(compareDebianVersions(a, b)))).toEqual(expected);
  });

  test('agrees with dpkg on random versions', async () => {
    const part = (first: string) =>
      fc
        .tuple(
          fc.constantFrom(...first),
          fc.string({ unit: fc.constantFrom(...'0123456789az.+~'), maxLength: 8 }),
        )
        .map(([a, b]) => a + b);
    const version = fc
      .tuple(fc.option(fc.nat({ max: 3 })), part('0123456789'), fc.option(part('0123456789a~')))
      .map(([epoch, up, rev]) => `${epoch === null ? '' : `${epoch}:`}${up}${rev === null ? '' : `-${rev}`}`);
    const pairs = fc.sample(fc.tuple(version, version), 400);
    const expected = await dpkgCompare(pairs);
    const mismatches = pairs.filter(([a, b], i) => Math.sign(compareDebianVersions(a, b)) !== expected[i]);
    expect(mismatches).toEqual([]);
  });
});

describe('choosing the image package', () => {
  test('package names', () => {
    expect(parseImagePackageName('linux-image-6.1.0-50-cloud-amd64', 'cloud-amd64')).toEqual({
      release: '6.1.0-50-cloud-amd64',
      variant: 'signed',
    });
    expect(parseImagePackageName('linux-image-6.12.117+deb13-cloud-amd64-unsigned', 'cloud-amd64')).toEqual({
      release: '6.12.117+deb13-cloud-amd64',
      variant: 'unsigned',
    });
    expect(parseImagePackageName('linux-image-cloud-amd64', 'cloud-amd64')).toBeUndefined();
    expect(parseImagePackageName('linux-image-6.1.0-50-cloud-amd64-dbg', 'cloud-amd64')).toBeUndefined();
    expect(parseImagePackageName('linux-image-6.1.0-50-amd64', 'cloud-amd64')).toBeUndefined();
    // Flavors end alike ("amd64", "cloud-amd64", "rt-amd64"): the release must not swallow one.
    expect(parseImagePackageName('linux-image-6.1.0-50-cloud-amd64', 'amd64')).toBeUndefined();
    expect(parseImagePackageName('linux-image-6.12.117+deb13-rt-amd64', 'amd64')).toBeUndefined();
    expect(parseImagePackageName('linux-image-6.12.117+deb13-amd64', 'amd64')?.release).toBe(
      '6.12.117+deb13-amd64',
    );
    expect(parseImagePackageName('linux-image-6.13-rc7-cloud-amd64', 'cloud-amd64')?.release).toBe(
      '6.13-rc7-cloud-amd64',
    );
  });

  test('version prefixes match whole components', () => {
    expect(versionMatchesPrefix('6.1.176-1', '6.1')).toBe(true);
    expect(versionMatchesPrefix('6.12.117-1', '6.1')).toBe(false);
    expect(versionMatchesPrefix('6.12.117-1', '6.12')).toBe(true);
    expect(versionMatchesPrefix('6.12.117-1', '6.12.117-1')).toBe(true);
    expect(versionMatchesPrefix('7.2~rc3-1', '7.2')).toBe(true);
    expect(versionMatchesPrefix('1:6.1.5-1', '6.1')).toBe(true);
  });

  const pkg = (name: string, version: string, depends: string[] = []): PackageInfo => ({
    package: name,
    version,
    depends,
  });
  const trixie = [
    pkg('linux-image-6.12.107+deb13-cloud-amd64', '6.12.107-1'),
    pkg('linux-image-6.12.117+deb13-cloud-amd64', '6.12.117-1'),
    pkg('linux-image-6.12.117+deb13-cloud-amd64-unsigned', '6.12.117-1'),
    pkg('linux-image-6.1.0-50-cloud-amd64', '6.1.176-1'),
    pkg('linux-image-6.12.117+deb13-amd64', '6.12.117-1'),
  ];

  test('newest matching, signed unless the unsigned build is asked for', () => {
    expect(chooseImage(trixie, { suite: 'trixie' })?.package).toBe('linux-image-6.12.117+deb13-cloud-amd64');
    expect(chooseImage(trixie, { suite: 'trixie', version: '6.1' })?.package).toBe(
      'linux-image-6.1.0-50-cloud-amd64',
    );
    expect(chooseImage(trixie, { suite: 'trixie', variant: 'unsigned' })?.package).toBe(
      'linux-image-6.12.117+deb13-cloud-amd64-unsigned',
    );
    expect(chooseImage(trixie, { suite: 'trixie', flavor: 'amd64' })?.package).toBe(
      'linux-image-6.12.117+deb13-amd64',
    );
    expect(
      chooseImage(trixie, { suite: 'trixie', package: 'linux-image-6.12.107+deb13-cloud-amd64' })?.version,
    ).toBe('6.12.107-1');
    expect(chooseImage(trixie, { suite: 'trixie', version: '5.10' })).toBeUndefined();
  });

  test('split packaging (sid): the files come from linux-binary-* and linux-base-*', () => {
    const rel = '7.2.13+deb14-cloud-amd64';
    const image = pkg(`linux-image-${rel}`, '7.2.13-1', [
      'dracut',
      `linux-base-${rel}`,
      `linux-binary-${rel}`,
      `linux-modules-${rel}`,
    ]);
    expect(payloadPackages(image, rel, 'signed')).toEqual([`linux-binary-${rel}`, `linux-base-${rel}`]);
    expect(payloadPackages(image, rel, 'unsigned')).toEqual([
      `linux-binary-unsigned-${rel}`,
      `linux-base-${rel}`,
    ]);
    const classic = pkg('linux-image-6.1.0-50-cloud-amd64', '6.1.176-1', ['kmod', 'linux-base']);
    expect(payloadPackages(classic, '6.1.0-50-cloud-amd64', 'signed')).toEqual([
      'linux-image-6.1.0-50-cloud-amd64',
    ]);
  });

  test('bad specs are usage errors', async () => {
    await expect(fetchDebianKernel({ suite: '../etc' })).rejects.toMatchObject({ code: 'usage' });
    await expect(fetchDebianKernel({ suite: 'sid', version: 'six' })).rejects.toMatchObject({
      code: 'usage',
    });
    await expect(fetchDebianKernel({ suite: 'sid', package: 'bash' })).rejects.toMatchObject({
      code: 'usage',
    });
  });
});

describe('picking files out of a tar stream', () => {
  let scratch: string;
  beforeAll(async () => {
    scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'corematrix-tar-'));
  });
  afterAll(async () => {
    await fs.rm(scratch, { recursive: true, force: true });
  });

  async function makeTar(format: string): Promise<{ tar: Buffer; files: Map<string, Buffer> }> {
    const root = await fs.mkdtemp(path.join(scratch, `${format}-`));
    // Over 100 bytes (the name field): GNU tar writes an 'L' record, pax a path record, and ustar
    // splits it into prefix and name at a '/'.
    const long = `usr/lib/modules/${'a'.repeat(60)}/${'b'.repeat(60)}/vmlinuz`;
    const files = new Map<string, Buffer>([
      ['boot/config-1', Buffer.from('CONFIG_A=y\n')],
      ['boot/vmlinuz-1', Buffer.from(Array.from({ length: 5000 }, (_, i) => i & 0xff))],
      [long, Buffer.from('long name')],
      ['usr/share/doc/other', Buffer.alloc(1024, 1)],
      ['boot/empty', Buffer.alloc(0)],
    ]);
    for (const [name, bytes] of files) {
      await fs.mkdir(path.join(root, path.dirname(name)), { recursive: true });
      await fs.writeFile(path.join(root, name), bytes);
    }
    await fs.symlink('vmlinuz-1', path.join(root, 'boot', 'vmlinuz'));
    const { stdout } = await execa('tar', [`--format=${format}`, '-C', root, '-cf', '-', '.'], {
      encoding: 'buffer',
    });
    return { tar: Buffer.from(stdout), files };
  }

  for (const format of ['gnu', 'pax', 'ustar']) {
    test(`${format} archives written by GNU tar, in any chunking`, async () => {
      const { tar, files } = await makeTar(format);
      const want = [...files.keys()].filter((n) => !n.startsWith('usr/share'));
      const wanted = (p: string) => want.includes(p) || p === 'boot/vmlinuz';
      const whole = await pickTarMembers(Readable.from([tar]), wanted);
      expect([...whole.keys()].sort()).toEqual([...want].sort());
      for (const name of want) expect(whole.get(name)?.equals(files.get(name)!), name).toBe(true);
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.integer({ min: 1, max: 3000 }), { minLength: 1, maxLength: 20 }),
          async (sizes) => {
            const chunks: Buffer[] = [];
            let at = 0;
            for (let i = 0; at < tar.length; i++) {
              const n = sizes[i % sizes.length]!;
              chunks.push(tar.subarray(at, at + n));
              at += n;
            }
            const got = await pickTarMembers(Readable.from(chunks), wanted);
            expect([...got.keys()].sort()).toEqual([...whole.keys()].sort());
            for (const [k, v] of got) expect(v.equals(whole.get(k)!)).toBe(true);
          },
        ),
        { numRuns: 30 },
      );
    });
  }

  test('stops reading once enough is found', async () => {
    const { tar } = await makeTar('gnu');
    let pulled = 0;
    async function* counted() {
      for (let at = 0; at < tar.length; at += 512) {
        pulled++;
        yield tar.subarray(at, at + 512);
      }
    }
    const got = await pickTarMembers(
      counted(),
      (p) => p.startsWith('boot/'),
      (f) => f.size >= 1,
    );
    expect(got.size).toBe(1);
    expect(pulled).toBeLessThan(tar.length / 512);
  });

  test('a corrupt size field is a parse error', async () => {
    const { tar } = await makeTar('gnu');
    const bad = Buffer.from(tar);
    bad.write('9z9', 124, 'latin1');
    await expect(pickTarMembers(Readable.from([bad]), () => true)).rejects.toMatchObject({ code: 'parse' });
  });
});

describe('the default Debian kernels', () => {
  let kernels: CachedKernel[];
  let coldMs: number;
  beforeAll(async () => {
    const t = Date.now();
    kernels = await defaultDebianKernels();
    coldMs = Date.now() - t;
    console.log(`defaultDebianKernels (first call in this run): ${coldMs} ms`);
  });

  test('one per default spec, each the kernel its package names', async () => {
    expect(kernels.map((k) => k.name)).toEqual(DEFAULT_DEBIAN_KERNELS.map((d) => d.name));
    for (const k of kernels) {
      const meta = JSON.parse(await fs.readFile(path.join(k.dir, 'meta.json'), 'utf8'));
      expect(meta.package).toBe(`linux-image-${k.release}`);
      expect(k.release.endsWith('-cloud-amd64')).toBe(true);
      // file(1) reads the bzImage's own version string.
      const { stdout } = await execa('file', ['-b', k.vmlinuz]);
      expect(stdout).toContain('Linux kernel x86 boot executable bzImage');
      expect(stdout).toContain(`version ${k.release} `);
      expect(stdout).toContain(`Debian ${meta.version}`);
      // The config is the one of this very kernel, and has the BTF that CO-RE needs.
      const config = await fs.readFile(k.config, 'utf8');
      const upstream = meta.version.replace(/-[^-]*$/, '');
      expect(config).toMatch(
        new RegExp(`^# Linux/x86 ${upstream.replace(/[.+]/g, '\\$&')} Kernel Configuration$`, 'm'),
      );
      expect(config).toMatch(/^CONFIG_DEBUG_INFO_BTF=y$/m);
      // Every file listed is what sha256sum says.
      for (const [name, sha] of Object.entries(meta.files as Record<string, string>)) {
        const sum = await execa('sha256sum', [path.join(k.dir, name)]);
        expect(sum.stdout.split(' ')[0], `${k.name} ${name}`).toBe(sha);
      }
      expect(k.btf).toBe(path.join(k.dir, 'btf'));
      // bpftool reads the BTF (its first line is type [1]).
      const dump = await execa('sh', ['-c', 'bpftool btf dump file "$1" | head -n 1', 'sh', k.btf!]);
      expect(dump.stdout).toMatch(/^\[1\] /);
    }
    const suites = Object.fromEntries(kernels.map((k) => [k.suite, k.release]));
    expect(suites.bullseye).toMatch(/^5\.10\./);
    expect(suites.bookworm).toMatch(/^6\.1\./);
    expect(suites.trixie).toMatch(/^6\.12\./);
    expect(compareDebianVersions(suites.sid!, suites.trixie!)).toBeGreaterThan(0);
  });

  test("the newest is the one Debian's own cloud metapackage points at", async () => {
    // linux-image-cloud-amd64 depends on the suite's current cloud kernel: an independent answer
    // to "newest". (A suite can hold an older ABI too, as bookworm does.)
    await Promise.all(
      kernels.map(async (k) => {
        const apt = await suiteApt(testCacheRoot(), k.suite);
        await apt.prepare();
        const { stdout } = await execa('apt-cache', ['depends', 'linux-image-cloud-amd64'], {
          env: { APT_CONFIG: apt.configFile },
        });
        expect(stdout, k.suite).toContain(`Depends: linux-image-${k.release}`);
      }),
    );
  });

  test('a warm fetch spawns no process and touches no apt state', async () => {
    const shims = await fs.mkdtemp(path.join(os.tmpdir(), 'corematrix-shims-'));
    const log = path.join(shims, 'spawned.log');
    for (const tool of ['apt-get', 'apt-cache', 'apt-config', 'dpkg-deb', 'gpgv', 'tar']) {
      await fs.writeFile(path.join(shims, tool), `#!/bin/sh\necho ${tool} "$@" >> ${log}\nexit 1\n`, {
        mode: 0o755,
      });
    }
    const listsBefore = await listsState();
    const savedPath = process.env.PATH;
    process.env.PATH = shims;
    try {
      const t = Date.now();
      const again = await defaultDebianKernels();
      const warmMs = Date.now() - t;
      console.log(`defaultDebianKernels warm: ${warmMs} ms`);
      expect(again).toEqual(kernels);
    } finally {
      process.env.PATH = savedPath;
    }
    expect(await fs.readFile(log, 'utf8').catch(() => '')).toBe('');
    expect(await listsState()).toEqual(listsBefore);
    await fs.rm(shims, { recursive: true, force: true });
  });

  async function listsState(): Promise<string[]> {
    const out: string[] = [];
    for (const suite of ['bullseye', 'bookworm', 'trixie', 'sid']) {
      const dir = path.join(testCacheRoot(), '.apt', suite, 'state', 'lists');
      for (const n of await fs.readdir(dir))
        out.push(`${suite}/${n} ${(await fs.stat(path.join(dir, n))).mtimeMs}`);
    }
    return out.sort();
  }
});

/** An empty cache directory; world-readable like kernels/, so apt's _apt sandbox can reach it. */
async function freshCache(): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'corematrix-kcache-'));
  await fs.chmod(dir, 0o755);
  return dir;
}

describe('fetching into a cache of its own', () => {
  // A separate cache, so that breaking entries on purpose never disturbs other tests' kernels.
  let cache: string;
  let childScript: string;
  const spec = { suite: 'bullseye', version: '5.10' } as const;
  let reference: { dir: string; vmlinuz: Buffer; config: Buffer };

  beforeAll(async () => {
    cache = await freshCache();
    childScript = await nodeScript(
      'fetch-child',
      `import { fetchDebianKernel } from ${JSON.stringify(path.join(here, 'debian.ts'))};
       const [cache, suite, version] = process.argv.slice(2);
       const k = await fetchDebianKernel({ suite, version }, { cache, log: (l) => console.error(l) });
       console.log(JSON.stringify({ dir: k.dir, release: k.release }));`,
    );
  });
  afterAll(async () => {
    await fs.rm(cache, { recursive: true, force: true });
  });

  test('from empty: update, resolve, download, unpack', async () => {
    const t = Date.now();
    const k = await fetchDebianKernel(spec, { cache });
    console.log(`cold fetch of ${k.package} into an empty cache: ${Date.now() - t} ms`);
    const shared = (await defaultDebianKernels()).find((s) => s.suite === 'bullseye')!;
    expect(path.basename(k.dir)).toBe(path.basename(shared.dir));
    reference = { dir: k.dir, vmlinuz: await fs.readFile(k.vmlinuz), config: await fs.readFile(k.config) };
    expect(reference.vmlinuz.equals(await fs.readFile(shared.vmlinuz))).toBe(true);
    const leftovers = (await fs.readdir(path.join(cache, 'debian'))).filter((n) => /^\.(tmp|old)-/.test(n));
    expect(leftovers).toEqual([]);
    expect(
      (await fs.readdir(path.join(cache, '.apt', 'bullseye'))).filter((n) => n.startsWith('.download')),
    ).toEqual([]);
  });

  test('a corrupted file is detected by its SHA-256 and fetched again', async () => {
    const vmlinuz = path.join(reference.dir, 'vmlinuz');
    const bytes = Buffer.from(reference.vmlinuz);
    const middle = bytes.length >> 1;
    bytes[middle] = bytes[middle]! ^ 0x40;
    await fs.writeFile(vmlinuz, bytes);
    expect((await inspectEntry(reference.dir)).state).toBe('corrupt');
    const lines: string[] = [];
    const k = await fetchDebianKernel(spec, { cache, log: (l) => lines.push(l) });
    expect(lines.join('\n')).toMatch(/refetching .*vmlinuz has SHA-256/);
    expect((await fs.readFile(k.vmlinuz)).equals(reference.vmlinuz)).toBe(true);
    expect((await inspectEntry(k.dir)).state).toBe('ok');
  });

  test('an entry without meta.json (as after kill -9) is not used but fetched again', async () => {
    await fs.rm(path.join(reference.dir, 'meta.json'));
    await fs.writeFile(path.join(reference.dir, 'config'), 'half-written');
    const lines: string[] = [];
    const k = await fetchDebianKernel(spec, { cache, log: (l) => lines.push(l) });
    expect(lines.join('\n')).toMatch(/refetching .*no meta\.json/);
    expect((await fs.readFile(k.config)).equals(reference.config)).toBe(true);
  });

  test('killed with SIGKILL at any moment, a fetch leaves no entry that looks complete', async () => {
    // Each child is killed the moment it reports entering a stage (SIGKILL lands within a
    // millisecond or so, while that stage's work is under way).
    const stages = [/^downloading /, /^unpacking /, /^writing /, /^adding BTF /];
    const seen: string[] = [];
    for (const stage of stages) {
      await fs.rm(reference.dir, { recursive: true, force: true });
      const child = execa(process.execPath, [childScript, cache, spec.suite, spec.version], {
        reject: false,
      });
      let hit = false;
      child.stderr.on('data', (chunk: Buffer) => {
        if (
          !hit &&
          chunk
            .toString()
            .split('\n')
            .some((l) => stage.test(l))
        ) {
          hit = true;
          child.kill('SIGKILL');
        }
      });
      const result = await child;
      expect(result.signal, `${stage} reached`).toBe('SIGKILL');
      const state = await inspectEntry(reference.dir);
      const files = state.state === 'ok' ? ` with ${Object.keys(state.entry.meta.files).join('+')}` : '';
      seen.push(`${stage.source} ${state.state}${files}`);
      // The entry directory appears by one rename, with meta.json in it: absent or whole, never half.
      expect(['missing', 'ok']).toContain(state.state);
      if (state.state === 'ok') {
        expect((await fs.readFile(path.join(reference.dir, 'vmlinuz'))).equals(reference.vmlinuz)).toBe(true);
      }
    }
    console.log(`entry after SIGKILL at: ${seen.join('; ')}`);
    await fs.rm(reference.dir, { recursive: true, force: true });
    const k = await fetchDebianKernel(spec, { cache });
    expect((await fs.readFile(k.vmlinuz)).equals(reference.vmlinuz)).toBe(true);
    const debian = await fs.readdir(path.join(cache, 'debian'));
    expect(debian.filter((n) => /^\.(tmp|old)-|\.lock$/.test(n))).toEqual([]);
    const apt = await fs.readdir(path.join(cache, '.apt', 'bullseye'));
    expect(apt.filter((n) => n.startsWith('.download'))).toEqual([]);
  });

  test('two processes fetching the same kernel share one download and one entry', async () => {
    // From a cache with nothing at all: the two also race for the suite's index update.
    const fresh = await freshCache();
    try {
      const t = Date.now();
      const [a, b] = await Promise.all(
        [1, 2].map(() => execa(process.execPath, [childScript, fresh, spec.suite, spec.version])),
      );
      console.log(`two concurrent cold fetches: ${Date.now() - t} ms`);
      const ra = JSON.parse(a!.stdout);
      const rb = JSON.parse(b!.stdout);
      expect(ra).toEqual(rb);
      expect((await inspectEntry(ra.dir)).state).toBe('ok');
      expect((await fs.readFile(path.join(ra.dir, 'vmlinuz'))).equals(reference.vmlinuz)).toBe(true);
      const logs = `${a!.stderr}\n${b!.stderr}`;
      expect(logs.match(/^updating the package index/gm)).toHaveLength(1);
      expect(logs.match(/^downloading /gm)).toHaveLength(1);
      const debian = await fs.readdir(path.join(fresh, 'debian'));
      expect(debian.sort()).toEqual([path.basename(ra.dir), 'resolved']);
    } finally {
      await fs.rm(fresh, { recursive: true, force: true });
    }
  });

  test('the unsigned build of a split-packaged kernel (sid) comes from linux-binary-unsigned-*', async () => {
    const signed = (await defaultDebianKernels()).find((k) => k.suite === 'sid')!;
    const k = await fetchDebianKernel({ suite: 'sid', variant: 'unsigned' }, { cache });
    expect(k.release).toBe(signed.release);
    expect(k.dir).not.toBe(signed.dir);
    expect((k.entry.meta.debs as { package: string }[]).map((d) => d.package)).toEqual([
      `linux-binary-unsigned-${k.release}`,
      `linux-base-${k.release}`,
    ]);
    const { stdout } = await execa('file', ['-b', k.vmlinuz]);
    expect(stdout).toContain(`version ${k.release} `);
    // Same kernel, without the appended signature: shorter, and the same config.
    const [unsignedSize, signedSize] = await Promise.all([fs.stat(k.vmlinuz), fs.stat(signed.vmlinuz)]);
    expect(unsignedSize.size).toBeLessThan(signedSize.size);
    expect(await fs.readFile(k.config, 'utf8')).toBe(await fs.readFile(signed.config, 'utf8'));
  });

  test('an exact package, and what a suite does not have', async () => {
    const exact = await resolveKernel(
      { suite: 'bullseye', package: 'linux-image-5.10.0-32-cloud-amd64-unsigned' },
      { cache },
    );
    expect(exact.debs).toEqual([
      { package: 'linux-image-5.10.0-32-cloud-amd64-unsigned', version: exact.version },
    ]);
    await expect(
      resolveKernel({ suite: 'bullseye', package: 'linux-image-9.9.9-cloud-amd64' }, { cache }),
    ).rejects.toMatchObject({
      code: 'usage',
      message: expect.stringMatching(/Debian bullseye has no linux-image-9\.9\.9-cloud-amd64/),
    });
    await expect(resolveKernel({ suite: 'bullseye', version: '6.1' }, { cache })).rejects.toMatchObject({
      code: 'usage',
      message: expect.stringMatching(/Debian bullseye has no cloud-amd64 kernel 6\.1 /),
    });
  });

  test('resolving again with refresh finds the same kernel as the pinned resolution', async () => {
    const pinned = await fetchDebianKernel(spec, { cache });
    const fresh = await resolveKernel(spec, { cache, refresh: true });
    expect(fresh.package).toBe(pinned.package);
    expect(fresh.version).toBe(pinned.version);
  });
});
