import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';

// bin/corematrix.js starts `relocate` from a CommonJS bundle and the V8 code cache the build made
// for it (scripts/bundle-cli.mjs). Each check runs in a process of its own, as a user's run would:
// V8 takes a code cache only in the process state it was made for.

const repo = join(import.meta.dirname, '..', '..');
const bin = join(repo, 'bin', 'corematrix.js');
const bundle = join(repo, 'dist', 'cli', 'main-relocate.cjs');
const cases = join(repo, 'build', 'cases');

/** Runs `code` (CommonJS, with `launcher` = bin/corematrix.js's exports) in a fresh node. */
function inFreshNode(code: string) {
  const script = `const launcher = require(${JSON.stringify(bin)});\n${code}`;
  return spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', maxBuffer: 1 << 26 });
}

describe('the relocate launcher', () => {
  it('is CommonJS and exports its loader when required (the build compiles through it)', () => {
    const launcher = createRequire(import.meta.url)(bin) as Record<string, unknown>;
    expect(Object.keys(launcher).sort()).toEqual(['RELOCATE_BUNDLE', 'compileBundle', 'runBundle']);
    expect(launcher.RELOCATE_BUNDLE).toBe(bundle);
  });

  it('V8 takes the code cache the build wrote', () => {
    const r = inFreshNode(
      `const s = launcher.compileBundle(launcher.RELOCATE_BUNDLE, require('node:fs').readFileSync(launcher.RELOCATE_BUNDLE + '.cache'));
       process.stdout.write(String(s.cachedDataRejected));`,
    );
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('false');
  });

  it('the bundle is ASCII (the launcher reads it as Latin-1)', () => {
    const bytes = readFileSync(bundle);
    expect(bytes.findIndex((b) => b > 0x7f)).toBe(-1);
  });

  it('the bundle loads the modules it leaves in dist/ through the launcher, none by import()', () => {
    const source = readFileSync(bundle, 'utf8');
    expect(source.match(/\bimport\(/g)).toBeNull();
    // A vmlinuz is read by kernels/read.js, one of the modules outside the bundle.
    expect(source).toContain('__load("../kernels/read.js")');
  });

  it('a checkout without dist/ gets one line saying to build, exit 2, for relocate and the rest', () => {
    const dir = mkdtempSync(join(tmpdir(), 'corematrix-unbuilt-'));
    mkdirSync(join(dir, 'bin'));
    for (const f of ['corematrix.js', 'package.json'])
      copyFileSync(join(repo, 'bin', f), join(dir, 'bin', f));
    for (const args of [
      ['relocate', 'a.o', '--btf', 'b'],
      ['btf', 'info', 'x'],
    ]) {
      const r = spawnSync(process.execPath, [join(dir, 'bin', 'corematrix.js'), ...args], {
        encoding: 'utf8',
      });
      expect(r.status).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(
        /^corematrix: \S+dist\/\S+ is missing: build the CLI first \(npm run build\)\n$/,
      );
    }
  });

  it('a relocate loads no child_process (commander gets it on demand)', () => {
    const args = [
      'relocate',
      join(cases, 'fields.bpf.o'),
      '--btf',
      join(cases, 'targets', 'minikernel_5_4.btf'),
    ];
    const r = inFreshNode(
      `const script = launcher.compileBundle(launcher.RELOCATE_BUNDLE);
       const io = { stdout: { write() {}, flush() {} }, stderr: (line) => process.stderr.write(line) };
       launcher.runBundle(script, launcher.RELOCATE_BUNDLE).main(${JSON.stringify(args)}, io).then((code) => {
         process.stdout.write(JSON.stringify({ code, loaded: process.moduleLoadList.filter((m) => m.includes('child_process')) }));
       });`,
    );
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual({ code: 0, loaded: [] });
  });

  it('a bundle whose cache V8 refuses compiles from source and answers the same', () => {
    // Next to the bundle: the modules it leaves in dist/ are found from its own path.
    const copy = join(repo, 'dist', 'cli', `.launcher-test-${process.pid}.cjs`);
    copyFileSync(bundle, copy);
    writeFileSync(`${copy}.cache`, Buffer.alloc(4096, 0x5a));
    onTestFinished(() => {
      for (const f of [copy, `${copy}.cache`]) rmSync(f, { force: true });
    });
    const objects = ['fields.bpf.o', 'kernel_changes.bpf.o'].map((o) => join(cases, o));
    const target = join(cases, 'targets', 'minikernel_5_4.o');
    const args = ['relocate', ...objects, '--btf', target, '--json'];
    const viaCopy = inFreshNode(
      `const fs = require('node:fs');
       const file = ${JSON.stringify(copy)};
       const script = launcher.compileBundle(file, fs.readFileSync(file + '.cache'));
       if (!script.cachedDataRejected) throw new Error('a garbage cache was taken');
       launcher.runBundle(script, file).main(${JSON.stringify(args)}).then((code) => { process.exitCode = code; });`,
    );
    const viaBin = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', maxBuffer: 1 << 26 });
    expect(viaCopy.stderr).toBe('');
    expect(viaCopy.status).toBe(0);
    expect(viaBin.status).toBe(0);
    // An ELF target: the relocations of both objects, read through kernels/read.js.
    expect(viaCopy.stdout.trim().split('\n').length).toBeGreaterThan(20);
    expect(viaCopy.stdout).toBe(viaBin.stdout);
  });
});
