import { type SpawnSyncReturns, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { BPF_CONFIG_HIGHLIGHTS, parseKernelConfig } from '../kernels/config.js';
import { type CachedKernel, defaultDebianKernels, testCacheRoot } from '../test-support/kernels.js';

// The kernels commands as a user runs them: the built bin/corematrix.js in a process of its own,
// over the repository's matrix.yaml.

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin = path.join(repo, 'bin', 'corematrix.js');
const matrix = path.join(repo, 'matrix.yaml');
const DEBIAN = ['bullseye', 'bookworm', 'trixie', 'sid'];
let tmp: string;
let shims: string;
let spawnLog: string;
let kernels: CachedKernel[];

beforeAll(async () => {
  kernels = await defaultDebianKernels();
  tmp = mkdtempSync(path.join(os.tmpdir(), 'corematrix-kernels-cli-'));
  // Stand-ins for every tool that could reach the archive: each records that it ran, and fails.
  shims = path.join(tmp, 'shims');
  spawnLog = path.join(tmp, 'spawned.log');
  mkdirSync(shims);
  for (const tool of [
    'apt-get',
    'apt-cache',
    'apt-config',
    'dpkg-deb',
    'dpkg',
    'gpgv',
    'curl',
    'wget',
    'tar',
  ]) {
    writeFileSync(path.join(shims, tool), `#!/bin/sh\necho ${tool} "$@" >> ${spawnLog}\nexit 1\n`, {
      mode: 0o755,
    });
  }
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface RunOptions {
  cache?: string;
  env?: Record<string, string>;
  offline?: boolean;
}

function corematrix(args: string[], options: RunOptions = {}): SpawnSyncReturns<string> & { ms: number } {
  const env: Record<string, string | undefined> = {
    ...process.env,
    COREMATRIX_CACHE: options.cache ?? testCacheRoot(),
    ...(options.offline === true ? { PATH: shims } : {}),
    ...options.env,
  };
  const start = performance.now();
  const result = spawnSync(process.execPath, [bin, ...args], {
    cwd: repo,
    env,
    encoding: 'utf8',
    maxBuffer: 1 << 26,
  });
  return { ...result, ms: performance.now() - start };
}

function spawned(): string {
  try {
    return readFileSync(spawnLog, 'utf8');
  } catch {
    return '';
  }
}

function rows(stdout: string): Map<string, string[]> {
  const lines = stdout.split('\n');
  const header = lines[0]!;
  const starts = ['NAME', 'SOURCE', 'PACKAGE', 'RELEASE', 'STATE', 'BTF TYPES'].map((h) => header.indexOf(h));
  const out = new Map<string, string[]>();
  for (const line of lines.slice(1, 6)) {
    const cells = starts.map((s, i) => line.slice(s, starts[i + 1]).trim());
    out.set(cells[0]!, cells);
  }
  return out;
}

describe('kernels list', () => {
  test('the cached default kernels, offline: no apt, dpkg or download tool runs', () => {
    rmSync(spawnLog, { force: true });
    const r = corematrix(['kernels', 'list', '--matrix', matrix], { offline: true });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(spawned()).toBe('');
    const table = rows(r.stdout);
    expect([...table.keys()]).toEqual([...DEBIAN, 'host']);
    for (const k of kernels) {
      const name = k.name === 'debian-sid' ? 'sid' : k.suite;
      const [, source, pkg, release, state, types] = table.get(name)!;
      expect(source).toMatch(new RegExp(`^Debian ${k.suite} cloud-amd64`));
      expect(pkg).toMatch(/^linux-image-\S+ \S+$/);
      expect(release).toBe(k.release);
      expect(state).toBe('cached');
      expect(Number(types)).toBeGreaterThan(50_000);
    }
    const host = table.get('host')!;
    expect(host[3]).toBe(os.release());
    expect(host[4]).toBe('host');
    console.log(`kernels list (warm, offline): ${r.ms.toFixed(0)} ms`);
  });

  test('in a network namespace with no network at all', (context) => {
    if (spawnSync('unshare', ['-n', 'true']).status !== 0) context.skip();
    const r = spawnSync('unshare', ['-n', process.execPath, bin, 'kernels', 'list', '--matrix', matrix], {
      cwd: repo,
      env: { ...process.env, COREMATRIX_CACHE: testCacheRoot() },
      encoding: 'utf8',
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout.split('\n').filter((l) => / cached /.test(l))).toHaveLength(4);
  });

  test('an empty cache: the Debian kernels are "not fetched", still without apt', () => {
    rmSync(spawnLog, { force: true });
    const r = corematrix(['kernels', 'list', '--matrix', matrix], {
      offline: true,
      cache: path.join(tmp, 'empty'),
    });
    expect(r.status).toBe(0);
    expect(spawned()).toBe('');
    const table = rows(r.stdout);
    for (const name of DEBIAN) expect(table.get(name)!.slice(2)).toEqual(['-', '-', 'not fetched', '-']);
    expect(r.stdout).toContain('fetch with: corematrix kernels fetch bullseye bookworm trixie sid\n');
  });
});

describe('a bad matrix or name: one line, exit 2', () => {
  function expectUsageLine(r: SpawnSyncReturns<string>, line: string | RegExp): void {
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    if (typeof line === 'string') expect(r.stderr).toBe(`${line}\n`);
    else expect(r.stderr).toMatch(line);
  }

  test('a misspelled key, for each command', () => {
    const bad = path.join(tmp, 'bad.yaml');
    writeFileSync(bad, 'kernels:\n  - name: a\n    suite: bookworm\n    verison: "6.1"\ncases: [x.o]\n');
    for (const args of [['list'], ['fetch'], ['info', 'a']]) {
      const r = corematrix(['kernels', ...args, '--matrix', bad], { offline: true });
      expectUsageLine(
        r,
        new RegExp(
          `^corematrix: ${bad}:4:5: unknown key "verison" in kernels\\[0\\] \\(did you mean "version"\\?\\)`,
        ),
      );
    }
  });

  test('no matrix file', () => {
    const r = corematrix(['kernels', 'list', '--matrix', path.join(tmp, 'none.yaml')]);
    expectUsageLine(r, `corematrix: ${path.join(tmp, 'none.yaml')}: cannot read the matrix: no such file`);
  });

  test('--matrix defaults to ./matrix.yaml', () => {
    const r = spawnSync(process.execPath, [bin, 'kernels', 'list'], { cwd: tmp, encoding: 'utf8' });
    expectUsageLine(r, 'corematrix: matrix.yaml: cannot read the matrix: no such file');
  });

  test('a kernel the matrix does not have', () => {
    const r = corematrix(['kernels', 'info', 'bookwrom', '--matrix', matrix]);
    expectUsageLine(
      r,
      `corematrix: ${matrix}: no kernel named "bookwrom" (did you mean bookworm?); the matrix has: bullseye, bookworm, trixie, sid, host`,
    );
  });
});

describe('kernels info', () => {
  test('release, BTF and the BPF config options exactly as each config file writes them', () => {
    for (const name of [...DEBIAN, 'host']) {
      const r = corematrix(['kernels', 'info', name, '--matrix', matrix], { offline: true });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      const out = r.stdout;
      const field = (label: string) => new RegExp(`^${label}:\\s+(.*)$`, 'm').exec(out)?.[1];
      const configFile = field('config')!.replace(/ \(Linux\/.*\)$/, '');
      const k = kernels.find((c) => (name === 'sid' ? c.suite === 'sid' : c.suite === name));
      if (k !== undefined) {
        expect(field('release')).toBe(`${k.release} (from the vmlinuz)`);
        expect(configFile).toBe(k.config);
        expect(field('btf size')).toMatch(new RegExp(`^${readFileSync(k.btf!).length} bytes`));
      } else {
        expect(field('release')).toBe(`${os.release()} (from uname -r)`);
      }
      const configText = readFileSync(configFile);
      const configLines = new Set(
        (configFile.endsWith('.gz') ? parseConfigText(configText) : configText.toString('utf8')).split('\n'),
      );
      const config = parseKernelConfig(configText);
      const shown = out.slice(out.indexOf('bpf config:\n')).split('\n').slice(1, -1);
      expect(shown).toHaveLength(BPF_CONFIG_HIGHLIGHTS.length);
      for (const [i, { name: option }] of BPF_CONFIG_HIGHLIGHTS.entries()) {
        const text = shown[i]!.trim().split(/\s{2,}/)[0]!;
        if (config.options.has(option)) expect(configLines.has(text), `${name}: ${text}`).toBe(true);
        else expect(text).toBe(`${option} (not in the config)`);
      }
      for (const option of ['CONFIG_DEBUG_INFO_BTF', 'CONFIG_BPF_SYSCALL', 'CONFIG_BPF_JIT']) {
        expect(out, `${name} ${option}`).toContain(`  ${option}=y `);
      }
      const types = Number(/^btf types:\s+(\d+)/m.exec(out)?.[1]);
      expect(types).toBeGreaterThan(50_000);
    }
  });
});

function parseConfigText(gz: Buffer): string {
  return spawnSync('gzip', ['-dc'], { input: gz, encoding: 'utf8', maxBuffer: 1 << 26 }).stdout;
}

describe('kernels fetch, whole process', () => {
  test('empty cache (target under a minute), then warm (target under a second, no process spawned)', () => {
    const cache = path.join(tmp, 'cold');
    const cold = corematrix(['kernels', 'fetch', '--matrix', matrix], { cache, env: { CI: 'true' } });
    expect(
      cold.stderr.split('\n').filter((l) => / downloading linux-/.test(l)).length,
    ).toBeGreaterThanOrEqual(4);
    expect(cold.status, cold.stderr).toBe(0);
    // Plain progress lines (CI is set), each "NAME: stage".
    expect(cold.stderr).not.toContain('\x1b[');
    for (const line of cold.stderr.trimEnd().split('\n'))
      expect(line).toMatch(/^(bullseye|bookworm|trixie|sid|host): /);
    for (const name of DEBIAN)
      expect(cold.stdout).toMatch(
        new RegExp(`^${name}: \\S+ \\(linux-image-\\S+ \\S+\\) in ${cache}/debian/`, 'm'),
      );
    expect(cold.stdout).toContain(`host: host, release ${os.release()}: nothing to fetch\n`);

    rmSync(spawnLog, { force: true });
    const warm = corematrix(['kernels', 'fetch', '--matrix', matrix], {
      cache,
      offline: true,
      env: { CI: 'true' },
    });
    expect(warm.status, warm.stderr).toBe(0);
    expect(spawned()).toBe('');
    expect(warm.stdout).toBe(cold.stdout);

    console.log(
      `kernels fetch, four Debian kernels: empty cache ${(cold.ms / 1000).toFixed(1)} s, warm ${warm.ms.toFixed(0)} ms`,
    );
    expect(cold.ms).toBeLessThan(60_000);
    expect(warm.ms).toBeLessThan(1_000);

    const list = corematrix(['kernels', 'list', '--matrix', matrix], { cache, offline: true });
    expect(list.stdout.split('\n').filter((l) => / cached /.test(l))).toHaveLength(4);
    rmSync(cache, { recursive: true, force: true });
  }, 300_000);

  test('fetching by name fetches only those', () => {
    const r = corematrix(['kernels', 'fetch', 'bookworm', 'host', '--matrix', matrix], { offline: true });
    expect(r.status, r.stderr).toBe(0);
    expect(
      r.stdout
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split(':')[0]),
    ).toEqual(['bookworm', 'host']);
  });

  test('progress redrawn in place on a terminal, plain lines on a terminal when CI is set', (context) => {
    if (spawnSync('script', ['-V']).status !== 0) context.skip();
    const command = `${process.execPath} ${bin} kernels fetch --matrix ${matrix} >/dev/null`;
    const env = { ...process.env, COREMATRIX_CACHE: testCacheRoot() };
    const tty = spawnSync('script', ['-qec', command, '/dev/null'], {
      env: { ...env, CI: '' },
      encoding: 'utf8',
    });
    expect(tty.status).toBe(0);
    expect(tty.stdout).toContain('\x1b[2K');
    expect(tty.stdout).toMatch(/\x1b\[\d+A/);
    const ci = spawnSync('script', ['-qec', command, '/dev/null'], {
      env: { ...env, CI: 'true' },
      encoding: 'utf8',
    });
    expect(ci.status).toBe(0);
    expect(ci.stdout).not.toContain('\x1b[');
    expect(ci.stdout).toContain('bookworm: cached: ');
  });
});
