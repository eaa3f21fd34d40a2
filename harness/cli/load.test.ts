import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCorematrix } from '../test-support/cli.js';
import { defaultDebianKernels } from '../test-support/kernels.js';
import { AGENT_BIN } from '../vm/cell.js';

const repo = join(import.meta.dirname, '..', '..');
const minimal = join(repo, 'build', 'cases', 'minimal.bpf.o');
const changes = join(repo, 'build', 'cases', 'kernel_changes.bpf.o');
const ready = existsSync(AGENT_BIN) && existsSync(minimal) && existsSync(changes);
let dir: string;
let matrix: string;

const corematrix = runCorematrix;

beforeAll(async () => {
  const bookworm = (await defaultDebianKernels()).find((k) => k.name === 'debian-bookworm-6.1')!;
  dir = mkdtempSync(join(tmpdir(), 'corematrix-load-cli-'));
  // A kernel whose image QEMU refuses: its files for planning are bookworm's.
  writeFileSync(join(dir, 'bad-vmlinuz'), new Uint8Array(4096).fill(0x5a));
  writeFileSync(join(dir, 'not-an-object.o'), 'hello\n');
  matrix = join(dir, 'matrix.yaml');
  writeFileSync(
    matrix,
    [
      'kernels:',
      '  - name: broken',
      '    vmlinuz: ./bad-vmlinuz',
      `    btf: ${bookworm.btf}`,
      `    config: ${bookworm.config}`,
      '  - name: nothing-to-boot',
      '    host: true',
      'cases: ["*.o"]',
      '',
    ].join('\n'),
  );
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(!ready)('corematrix load', () => {
  it('usage: no --kernel, an unknown kernel, a kernel without an image: exit 2, one line', async () => {
    const none = await corematrix('load', minimal);
    expect(none.status).toBe(2);
    expect(none.stderr).toBe("corematrix: required option '--kernel <NAME>' not specified\n");
    const unknown = await corematrix('load', minimal, '--kernel', 'bookwrm');
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toMatch(
      /^corematrix: matrix\.yaml: no kernel named "bookwrm" \(did you mean bookworm\?\)[^\n]*\n$/,
    );
    const host = await corematrix('load', minimal, '--kernel', 'nothing-to-boot', '--matrix', matrix);
    expect(host.status).toBe(2);
    expect(host.stderr).toMatch(/no image to boot/);
    expect(host.stderr.split('\n')).toHaveLength(2);
  });

  it('bad input: an object that is not a BPF object exits 1 (no VM is booted for it)', async () => {
    const r = await corematrix('load', join(dir, 'not-an-object.o'), '--kernel', 'bookworm');
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/refused before load: not a BPF object/);
    expect(r.stderr).toMatch(/^corematrix: .*not-an-object\.o: not a BPF object/);
  });

  it('boots bookworm: loaded and rejected programs with their causes, exit 0; --json', async () => {
    const t0 = performance.now();
    const r = await corematrix('load', minimal, changes, '--kernel', 'bookworm');
    const wall = Math.round(performance.now() - t0);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(
      /^kernel bookworm \(6\.1\.0-50-cloud-amd64\), (tcg|kvm): boot [\d.]+ s, load [\d.]+ s/,
    );
    expect(r.stdout).toMatch(/log_write \(tp\/syscalls\/sys_enter_write\): loaded, \d+ insns processed/);
    expect(r.stdout).toMatch(
      /rq_disk_old_only \(kprobe\/blk_mq_start_request\): rejected, EINVAL: invalid func unknown#195896080 at insn 1 → failed CO-RE relocation struct request___pre517\.rq_disk .* on a reachable path/,
    );
    expect(r.stdout).toMatch(/\| 1: \(85\) call unknown#195896080/);
    console.log(`corematrix load (2 objects, bookworm): ${wall} ms wall\n${r.stdout.split('\n')[0]}`);

    const j = await corematrix('load', minimal, '--kernel', 'bookworm', '--json');
    expect(j.status).toBe(0);
    const json = JSON.parse(j.stdout) as { status: string; programs: { program: string; verdict: string }[] };
    expect(json.status).toBe('ok');
    expect(json.programs.map((p) => [p.program, p.verdict])).toEqual([['log_write', 'loaded']]);
  });

  it('an infra error (QEMU refuses the image) is reported per program; exit 0, or 1 with --strict-infra', async () => {
    const r = await corematrix('load', minimal, '--kernel', 'broken', '--matrix', matrix);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/INFRA ERROR \(qemu-failed, 1 attempt\(s\)\)/);
    expect(r.stdout).toMatch(/log_write \(tp\/syscalls\/sys_enter_write\): infra error: qemu-failed/);
    expect(r.stderr).toMatch(/^corematrix: infra error on broken: QEMU exited/);
    const strict = await corematrix(
      'load',
      minimal,
      '--kernel',
      'broken',
      '--matrix',
      matrix,
      '--strict-infra',
    );
    expect(strict.status).toBe(1);
  });
});
