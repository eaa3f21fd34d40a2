/**
 * `corematrix run` end to end, as the README tells users to run it: the built CLI on the default
 * matrix (the case suite × Debian's four kernels + the running kernel), both tiers — real QEMU
 * boots, real bpf() calls — into a temporary --out. Then a wrong expectation, VM faults with and
 * without --strict-infra, and shards merged back into the unsharded run.
 */

import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { readReport } from '../report/json.js';
import type { Report } from '../report/schema.js';
import { launchChromium } from '../test-support/chromium.js';
import { type CliResult, runCorematrix } from '../test-support/cli.js';
import { defaultDebianKernels } from '../test-support/kernels.js';
import { AGENT_BIN } from '../vm/cell.js';

const repo = path.join(import.meta.dirname, '..', '..');
const DEBIAN = ['bullseye', 'bookworm', 'trixie', 'sid'];
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'corematrix-run-e2e-'));
  await defaultDebianKernels();
  if (!existsSync(AGENT_BIN)) throw new Error(`${AGENT_BIN} is missing: bash scripts/build-agent.sh`);
}, 300_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('corematrix run on the default matrix, both tiers', () => {
  let run: CliResult;
  let out: string;
  let report: Report;

  beforeAll(async () => {
    out = path.join(dir, 'default');
    const t0 = performance.now();
    run = await runCorematrix('run', '--out', out);
    console.log(
      `corematrix run (default matrix, both tiers): ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    );
    report = await readReport(path.join(out, 'report.json'));
  }, 900_000);

  test('exit 0 with every expectation met; the four reports; index.html named last', () => {
    expect(run.stderr).not.toMatch(/^corematrix: /m);
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/^expectations: (\d+) met, 0 unmet$/m);
    expect(Number(/expectations: (\d+) met/.exec(run.stdout)?.[1])).toBeGreaterThanOrEqual(40);
    expect(run.stdout.trimEnd().split('\n').at(-1)).toBe(`report: ${path.join(out, 'index.html')}`);
    for (const f of ['report.json', 'index.html', 'junit.xml', 'summary.md'])
      expect(existsSync(path.join(out, f)), f).toBe(true);
  });

  test('report.json: every cell of the matrix; Debian kernels have VM verdicts, the host static ones only', () => {
    expect(report.run.tiers).toEqual(['static', 'vm']);
    expect(report.kernels.map((k) => k.name)).toEqual([...DEBIAN, 'host']);
    const objects = report.objects.map((o) => o.name);
    expect(objects).toContain('build/cases/kernel_changes.bpf.o');
    expect(report.cells).toHaveLength(5 * objects.length);
    for (const c of report.cells) {
      expect(c.status, `${c.kernel} ${c.object}`).not.toBe('infra_error');
      for (const p of c.programs) {
        expect(p.static?.verdict, `${c.kernel} ${c.object} ${p.name}`).toMatch(/^(loads|rejected)$/);
        if (c.kernel === 'host') expect(p.vm).toBeUndefined();
        else
          expect(p.vm?.verdict, `${c.kernel} ${c.object} ${p.name}`).toMatch(
            /^(loaded|rejected|refused-before-load)$/,
          );
      }
    }
    for (const k of DEBIAN) {
      const kc = report.cells.find((c) => c.kernel === k && c.object.endsWith('kernel_changes.bpf.o'))!;
      expect(kc.timings?.bootMs, k).toBeGreaterThan(0);
    }
    // Plain progress (not a terminal): a line per cell, with the VM's counts.
    expect(
      run.stderr.match(
        /^(bullseye|bookworm|trixie|sid|host) {2}build\/cases\/\S+ {2}(ok|needs-guard|failing|error)\b/gm,
      ),
    ).toHaveLength(report.cells.length);
  });

  test('junit.xml has a testsuite per kernel and one of the expectations; summary.md the grid', () => {
    const junit = readFileSync(path.join(out, 'junit.xml'), 'utf8');
    expect(junit.match(/<testsuite /g)).toHaveLength(report.kernels.length + 1);
    // Every expectation of the default matrix met: a passing testcase each.
    const expectations = report.expectations ?? [];
    expect(expectations.length).toBeGreaterThan(0);
    expect(expectations.every((x) => x.status === 'passed')).toBe(true);
    expect(junit).toContain(
      `<testsuite name="expectations" tests="${expectations.length}" failures="0" errors="0" skipped="0"`,
    );
    const summary = readFileSync(path.join(out, 'summary.md'), 'utf8');
    expect(summary).toContain('bullseye');
    expect(summary).toContain(`Expectations: ${expectations.length} met, 0 unmet.`);
  });

  test('index.html opens in Chromium from file:// and shows the whole grid', async () => {
    const browser = await launchChromium();
    try {
      const { page, problems, requests } = await browser.open(path.join(out, 'index.html'), '#grid');
      await expect(page.locator('#grid button.cell').count()).resolves.toBe(report.cells.length);
      await expect(page.locator('#grid thead th').count()).resolves.toBe(report.kernels.length + 1);
      await expect(page.locator('#expectations li[data-status=passed]').count()).resolves.toBe(
        report.expectations?.length ?? 0,
      );
      await expect(page.locator('#count').textContent()).resolves.toBe(
        `${report.cells.length} of ${report.cells.length} cells shown`,
      );
      const screenshots = path.join(repo, 'reports', 'screenshots');
      await page.screenshot({ path: path.join(screenshots, 'run-default-matrix.png'), fullPage: true });
      expect(requests.every((u) => u.startsWith('file://'))).toBe(true);
      expect(problems).toEqual([]);
    } finally {
      await browser.close();
    }
  }, 60_000);
});

/** The default matrix's bullseye and kernel_changes, both tiers; `extra` lines appended. */
function bullseyeMatrix(name: string, extra: string): string {
  const file = path.join(dir, name);
  writeFileSync(
    file,
    `kernels:
  - name: bullseye
    suite: bullseye
    version: "5.10"
cases:
  - path: ${path.join(repo, 'build', 'cases', 'kernel_changes.bpf.o')}
${extra}`,
  );
  return file;
}

describe('one Debian kernel, both tiers', () => {
  test('a wrong expectation fails the run (exit 1) naming it and what the VM said', async () => {
    const m = bullseyeMatrix(
      'wrong.yaml',
      `    expect:
      - name: "__state read loads on bullseye (it cannot: 5.10 has task_struct.state)"
        programs: [task_state_new_only]
        loads: [bullseye]
`,
    );
    const r = await runCorematrix('run', '--matrix', m, '--out', path.join(dir, 'wrong'));
    expect(r.status).toBe(1);
    expect(r.stdout).toContain('expectations: 0 met, 1 unmet');
    expect(r.stdout).toContain('UNMET');
    expect(r.stdout).toContain('__state read loads on bullseye (it cannot: 5.10 has task_struct.state)');
    expect(r.stdout).toMatch(
      /task_state_new_only is rejected: the VM said rejected \(EINVAL\): .*struct task_struct\.__state/,
    );
  }, 300_000);

  test('--tier vm alone still classifies the CO-RE accesses, from the VM verdicts', async () => {
    const out = path.join(dir, 'vm-only');
    const r = await runCorematrix(
      ...'run --tier vm --kernel bookworm -t kernel_changes --out'.split(' '),
      out,
    );
    // matrix.yaml's field expectations on kernel_changes (rq_disk guarded, __state …) hold.
    expect(r.stdout).toMatch(/^expectations: \d+ met, 0 unmet/m);
    expect(r.status, r.stdout).toBe(0);
    const report = await readReport(path.join(out, 'report.json'));
    expect(report.run.tiers).toEqual(['vm']);
    const [cell] = report.cells;
    expect(cell?.status).toBe('needs-guard');
    const programs = cell?.programs ?? [];
    expect(programs.every((p) => p.static === undefined)).toBe(true);
    // 5.17 dropped request.rq_disk: the old-only read is rejected for it, and classified so.
    const old = programs.find((p) => p.name === 'rq_disk_old_only');
    expect(old?.vm?.verdict).toBe('rejected');
    const oldRead = old?.relocations.find((x) => x.kind === 'byte_off' && x.access.endsWith('.rq_disk'));
    expect(oldRead?.classification).toBe('needs-guard');
    const portable = programs.find((p) => p.name === 'rq_disk_portable');
    expect(portable?.vm?.verdict).toBe('loaded');
    const read = portable?.relocations.find((x) => x.kind === 'byte_off' && x.access.endsWith('.rq_disk'));
    expect(read?.result).toBe('poisoned');
    expect(read?.classification).toBe('guarded');
  }, 300_000);

  test('VM faults: retried once, then infra_error cells; exit 0 saying so, exit 1 with --strict-infra', async () => {
    // A boot budget no kernel meets under TCG: every try times out.
    const m = bullseyeMatrix('faults.yaml', 'timeouts: { boot: 0.3, load: 0.3 }\n');
    const r = await runCorematrix('run', '--matrix', m, '--out', path.join(dir, 'faults'));
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/^bullseye: VM infra_error \(timeout\): .*; trying again$/m);
    expect(r.stderr.match(/trying again/g)).toHaveLength(1);
    expect(r.stdout).toMatch(
      /^infra errors: 1 cell\(s\) .*they do not fail the run without --strict-infra$/m,
    );
    const report = await readReport(path.join(dir, 'faults', 'report.json'));
    expect(report.cells.map((c) => c.status)).toEqual(['infra_error']);
    // The static tier's verdicts are there all the same.
    expect(report.cells[0]!.programs.every((p) => p.static !== undefined)).toBe(true);
    const strict = await runCorematrix(
      'run',
      '--matrix',
      m,
      '--out',
      path.join(dir, 'faults2'),
      '--strict-infra',
    );
    expect(strict.status).toBe(1);
    expect(strict.stdout).toContain('--strict-infra makes them fail the run');
  }, 300_000);
});

describe('shards', () => {
  /** The report without what differs between runs of the same cells: times. */
  function timeless(r: Report): unknown {
    const { generatedAt: _g, run, cells, ...rest } = r;
    const { durationMs: _d, shard: _s, ...runRest } = run;
    return { ...rest, run: runRest, cells: cells.map(({ timings: _t, ...c }) => c) };
  }

  test('--tier static --shard i/3 for i = 1..3, merged, equals the unsharded static run', async () => {
    const whole = await runCorematrix('run', '--tier', 'static', '--out', path.join(dir, 'whole'));
    expect(whole.status).toBe(0);
    const shards: string[] = [];
    for (let i = 1; i <= 3; i++) {
      const out = path.join(dir, `shard${i}`);
      const r = await runCorematrix('run', '--tier', 'static', '--shard', `${i}/3`, '--out', out);
      expect(r.status, r.stderr).toBe(0);
      const part = await readReport(path.join(out, 'report.json'));
      expect(part.run.shard).toEqual({ index: i, count: 3 });
      shards.push(path.join(out, 'report.json'));
    }
    const merged = path.join(dir, 'merged');
    const m = await runCorematrix('merge', ...shards, '-o', merged);
    expect(m.status, m.stderr).toBe(0);
    const a = await readReport(path.join(dir, 'whole', 'report.json'));
    const b = await readReport(path.join(merged, 'report.json'));
    expect(b.cells.length).toBe(a.cells.length);
    expect(timeless(b)).toEqual(timeless(a));
  }, 300_000);
});
