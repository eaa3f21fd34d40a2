/**
 * index.html in real headless Chromium (Debian's /usr/bin/chromium driven by playwright-core, a
 * fresh profile, no network): the grid, the filters, the drill-down to relocations, the per-field
 * view, and a report whose names are HTML/JS rendering inert. Screenshots go to
 * reports/screenshots/.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { embedJson, renderHtml } from './html.js';
import { type Report, type ReportProgram, type ReportRelocation, ReportSchema } from './schema.js';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const SCREENSHOTS = join(import.meta.dirname, '..', '..', 'reports', 'screenshots');

const K510 = 'debian-bullseye-5.10';
const K61 = 'debian-bookworm-6.1';
const K612 = 'debian-sid-6.12';

function reloc(over: Partial<ReportRelocation>): ReportRelocation {
  return {
    section: 'tp_btf/sched_switch',
    index: 0,
    function: 'on_switch',
    insn: 4,
    kind: 'byte_off',
    access: 'struct task_struct.__state',
    spec: '0:1',
    result: 'patched',
    classification: 'resolved',
    ...over,
  };
}

const STATE_FIX =
  'guard the read: if (bpf_core_field_exists(t->__state)) ... else read task_struct___old.state';

function stateProgram(kernel: string): ReportProgram {
  if (kernel === K510) {
    return {
      name: 'on_switch',
      section: 'tp_btf/sched_switch',
      static: {
        verdict: 'rejected',
        reasons: [{ source: 'object', message: 'struct task_struct has no field __state' }],
        unknown: [],
      },
      vm: {
        verdict: 'rejected',
        errno: 22,
        errnoName: 'EINVAL',
        logExcerpt: '0: R1=ctx() R10=fp0\n4: (85) call unknown#195896080\ninvalid func unknown#195896080',
        cause: 'CO-RE relocation #0 (struct task_struct.__state) poisoned: no such field on this kernel',
      },
      relocations: [
        reloc({
          result: 'poisoned',
          classification: 'error',
          localSpec: '[12] struct task_struct.__state (0:1 @ offset 24)',
          fix: STATE_FIX,
        }),
      ],
    };
  }
  return {
    name: 'on_switch',
    section: 'tp_btf/sched_switch',
    static: { verdict: 'loads', reasons: [], unknown: [] },
    vm:
      kernel === K612
        ? { verdict: 'infra_error', cause: 'the VM did not answer in 30 s' }
        : { verdict: 'loaded', insnsProcessed: 17 },
    relocations: [
      reloc({
        old: '24',
        new: kernel === K61 ? '24' : '32',
        localSpec: '[12] struct task_struct.__state (0:1 @ offset 24)',
        targetSpec: `[140] struct task_struct.__state (0:1 @ offset ${kernel === K61 ? 24 : 32})`,
        classification: 'needs-guard',
        fix: STATE_FIX,
      }),
    ],
  };
}

function tracerPrograms(kernel: string): ReportProgram[] {
  return [
    {
      name: 'trace_skb',
      section: 'kprobe/kfree_skb',
      static: { verdict: 'loads', reasons: [], unknown: [] },
      vm: { verdict: 'loaded', insnsProcessed: 9 },
      relocations: [
        reloc({
          section: 'kprobe/kfree_skb',
          function: 'trace_skb',
          access: 'struct sk_buff.len',
          spec: '0:5',
          old: '112',
          new: kernel === K510 ? '104' : '112',
          classification: 'resolved',
        }),
        reloc({
          section: 'kprobe/kfree_skb',
          function: 'trace_skb',
          index: 1,
          insn: 9,
          kind: 'field_exists',
          access: 'struct sk_buff.tstamp_type',
          spec: '0:40',
          old: '1',
          new: kernel === K510 ? '0' : '1',
          classification: 'guarded',
        }),
      ],
    },
  ];
}

function sampleReport(): Report {
  const kernels = [K510, K61, K612].map((name) => ({
    name,
    source: `Debian ${name.split('-')[1]} cloud-amd64`,
    release: `${name.split('-')[2]}.0-1-cloud-amd64`,
    arch: 'x86_64',
  }));
  const objects = [
    { name: 'task_state.bpf.o', path: 'cases/task_state.bpf.o', sha256: 'a'.repeat(64) },
    { name: 'tracer.bpf.o', path: 'cases/tracer.bpf.o', sha256: 'b'.repeat(64) },
  ];
  const cells: Report['cells'] = [
    { kernel: K510, object: 'task_state.bpf.o', status: 'failing', programs: [stateProgram(K510)] },
    { kernel: K61, object: 'task_state.bpf.o', status: 'needs-guard', programs: [stateProgram(K61)] },
    {
      kernel: K612,
      object: 'task_state.bpf.o',
      status: 'infra_error',
      programs: [stateProgram(K612)],
      infra: { reason: 'timeout: no result in 30 s', consoleTail: '[    1.234] Run /init as init process' },
    },
    { kernel: K510, object: 'tracer.bpf.o', status: 'ok', programs: tracerPrograms(K510) },
    {
      kernel: K61,
      object: 'tracer.bpf.o',
      status: 'error',
      programs: tracerPrograms(K61),
      error: 'ambiguous relocation: struct sk_buff matches 2 candidate types',
    },
    {
      kernel: K612,
      object: 'tracer.bpf.o',
      status: 'ok',
      programs: tracerPrograms(K612),
      timings: { staticMs: 3.2 },
    },
  ];
  return ReportSchema.parse({
    schemaVersion: 1,
    generatedAt: '2025-01-02T03:04:05.000Z',
    corematrix: { version: '0.1.0' },
    run: { tiers: ['static', 'vm'], matrix: 'matrix.yaml', durationMs: 12_345 },
    kernels,
    objects,
    cells,
  });
}

const SCRIPT_BREAK = '</script><script>window.__pwned=1</script>';
const IMG = '<img src=x onerror="window.__pwned=2;alert(2)">';
const QUOTES = `"'><svg onload=window.__pwned=3>`;
const PROG = `<script>window.__pwned=4</script>'"\u2028\u2029<!--<script>`;
const ACCESS = 'struct </script><b id=bold>x</b>.f';

function evilReport(): Report {
  const r = sampleReport();
  const rename = new Map([
    ['task_state.bpf.o', SCRIPT_BREAK],
    ['tracer.bpf.o', IMG],
    [K61, QUOTES],
    [K510, '__proto__'],
  ]);
  const name = (n: string) => rename.get(n) ?? n;
  for (const k of r.kernels) k.name = name(k.name);
  for (const o of r.objects) o.name = name(o.name);
  for (const c of r.cells) {
    c.kernel = name(c.kernel);
    c.object = name(c.object);
    for (const p of c.programs) {
      p.name = PROG;
      for (const x of p.relocations) {
        x.access = ACCESS;
        x.fix = IMG;
      }
    }
  }
  r.expectations = [
    {
      name: `${SCRIPT_BREAK}: ${PROG} loads`,
      source: `${QUOTES}:3`,
      status: 'failed',
      message: IMG,
      kernels: [QUOTES],
    },
  ];
  return ReportSchema.parse(r);
}

let context: BrowserContext;
let profile: string;
let out: string;

async function open(
  report: Report,
  file: string,
): Promise<{ page: Page; problems: string[]; requests: string[] }> {
  const path = join(out, file);
  writeFileSync(path, renderHtml(report));
  const page = await context.newPage();
  const problems: string[] = [];
  const requests: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('dialog', (d) => {
    problems.push(`dialog: ${d.message()}`);
    void d.dismiss();
  });
  page.on('request', (q) => requests.push(q.url()));
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.goto(pathToFileURL(path).href);
  await page.locator('#grid').waitFor({ timeout: 5_000 });
  return { page, problems, requests };
}

const visibleCells = (page: Page) => page.locator('#grid td:not(.off):not(.hidden) button.cell:visible');

describe('renderHtml', () => {
  it('embeds the report as JSON with no raw <, >, &, U+2028 or U+2029', () => {
    const r = evilReport();
    const json = embedJson(r);
    expect(json).not.toMatch(/[<>&\u2028\u2029]/);
    expect(JSON.parse(json)).toEqual(r);
    const html = renderHtml(r);
    // The two script elements are the page's own: the data block and the inline script.
    expect(html.match(/<script/gi)).toHaveLength(2);
    expect(html.match(/<\/script/gi)).toHaveLength(2);
    expect(html).not.toMatch(/<(img|svg|b )/i);
    expect(html).not.toMatch(/https?:\/\//);
  });
});

describe('index.html in headless Chromium', () => {
  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium`);
    mkdirSync(SCREENSHOTS, { recursive: true });
    out = mkdtempSync(join(tmpdir(), 'corematrix-html-'));
    profile = mkdtempSync(join(tmpdir(), 'corematrix-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ARGS,
      offline: true,
    });
  });
  afterAll(async () => {
    await context?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
    if (out) rmSync(out, { recursive: true, force: true });
  });

  it('draws the grid coloured by status with a legend, from file:// with no network', async () => {
    const { page, problems, requests } = await open(sampleReport(), 'index.html');
    await expect(page.locator('#grid button.cell').count()).resolves.toBe(6);
    await expect(page.locator('#grid tbody tr').count()).resolves.toBe(2);
    await expect(page.locator('#grid thead th').count()).resolves.toBe(4);
    const statuses = await page
      .locator('#grid button.cell')
      .evaluateAll((bs) => bs.map((b) => `${(b as unknown as { className: string }).className}`));
    expect(statuses).toEqual([
      'cell st-failing',
      'cell st-needs-guard',
      'cell st-infra_error',
      'cell st-ok',
      'cell st-error',
      'cell st-ok',
    ]);
    // Colours differ per status.
    const colours = new Set<string>();
    for (const s of ['ok', 'needs-guard', 'failing', 'infra_error', 'error']) {
      colours.add(
        await page
          .locator(`#grid button.cell.st-${s}`)
          .first()
          .evaluate(
            (b) =>
              (
                globalThis as unknown as { getComputedStyle(e: unknown): { backgroundColor: string } }
              ).getComputedStyle(b).backgroundColor,
          ),
      );
    }
    expect(colours.size).toBe(5);
    await expect(page.locator('#legend input[type=checkbox]').count()).resolves.toBe(5);
    await expect(page.locator('#legend').textContent()).resolves.toMatch(
      /ok \(2\)[\s\S]*needs guard \(1\)[\s\S]*error \(1\)/,
    );
    await expect(page.locator('#count').textContent()).resolves.toBe('6 of 6 cells shown');
    await page.screenshot({ path: join(SCREENSHOTS, 'html-grid.png'), fullPage: true });
    expect(requests.every((u) => u.startsWith('file://'))).toBe(true);
    expect(problems).toEqual([]);
    await page.close();
  });

  it('lists the expectations, unmet first with what broke them; no section when there are none', async () => {
    const none = await open(sampleReport(), 'index.html');
    await expect(none.page.locator('#expectations').isVisible()).resolves.toBe(false);
    await none.page.close();
    const report: Report = {
      ...sampleReport(),
      expectations: [
        {
          name: 'tracer.bpf.o: on_exec loads on all kernels',
          source: 'matrix.yaml:7',
          status: 'passed',
          kernels: [K510, K61],
        },
        {
          name: 'task_state.bpf.o: on_switch loads on >= 5.10',
          source: 'matrix.yaml:12',
          status: 'failed',
          message: `${K510}: task_state.bpf.o on_switch is rejected: struct task_struct has no field __state\n${K612}: task_state.bpf.o has no program on_switch`,
          kernels: [K510, K61, K612],
        },
        {
          name: 'task_state.bpf.o: ok on sid',
          source: 'task_state.case.ts',
          status: 'skipped',
          message: 'nothing to check in this run',
        },
      ],
    };
    const { page, problems } = await open(report, 'expectations.html');
    const section = page.locator('#expectations');
    await expect(section.isVisible()).resolves.toBe(true);
    await expect(section.locator('p').first().textContent()).resolves.toBe(
      '1 met, 1 unmet, 1 not checked in this run',
    );
    await expect(
      section
        .locator('li')
        .evaluateAll((lis) =>
          lis.map((li) => (li as unknown as { dataset: { status: string } }).dataset.status),
        ),
    ).resolves.toEqual(['failed', 'skipped', 'passed']);
    const unmet = section.locator('li').first();
    await expect(unmet.locator('.badge').textContent()).resolves.toBe('unmet');
    // Unmet in sight; met and unchecked folded away until asked for.
    await expect(unmet.isVisible()).resolves.toBe(true);
    const rest = section.locator('details.expectations-rest');
    await expect(rest.locator('summary').textContent()).resolves.toBe('2 more (met or not checked)');
    await expect(rest.locator('li').first().isVisible()).resolves.toBe(false);
    await rest.locator('summary').click();
    await expect(rest.locator('li').first().isVisible()).resolves.toBe(true);
    await expect(unmet.locator('.src').textContent()).resolves.toBe(
      `matrix.yaml:12 \u2014 ${K510}, ${K61}, ${K612}`,
    );
    await expect(unmet.locator('pre').textContent()).resolves.toBe(
      `${K510}: task_state.bpf.o on_switch is rejected: struct task_struct has no field __state\n${K612}: task_state.bpf.o has no program on_switch`,
    );
    await page.screenshot({ path: join(SCREENSHOTS, 'html-expectations.png'), fullPage: true });
    expect(problems).toEqual([]);
    await page.close();
  });

  it('filters by status, kernel, object and free text', async () => {
    const { page, problems } = await open(sampleReport(), 'index.html');
    await expect(visibleCells(page).count()).resolves.toBe(6);
    // Status: untick ok -> the two ok cells disappear.
    await page.locator('#legend input[data-status="ok"]').uncheck();
    await expect(visibleCells(page).count()).resolves.toBe(4);
    await expect(page.locator('#count').textContent()).resolves.toBe('4 of 6 cells shown');
    await page.locator('#legend input[data-status="ok"]').check();
    await expect(visibleCells(page).count()).resolves.toBe(6);
    // Kernel: one column.
    await page.locator('#filter-kernel').selectOption({ label: K61 });
    await expect(visibleCells(page).count()).resolves.toBe(2);
    await expect(page.locator('#grid thead th:visible').count()).resolves.toBe(2);
    await page.locator('#filter-kernel').selectOption({ label: 'all' });
    // Object: one row.
    await page.locator('#filter-object').selectOption({ label: 'tracer.bpf.o' });
    await expect(visibleCells(page).count()).resolves.toBe(3);
    await expect(page.locator('#grid tbody tr:visible').count()).resolves.toBe(1);
    await page.locator('#filter-object').selectOption({ label: 'all' });
    // Free text: a cause only the 5.10 cell has, then a field only task_state uses.
    await page.locator('#filter-text').fill('POISONED');
    await expect(visibleCells(page).count()).resolves.toBe(1);
    await expect(visibleCells(page).first().getAttribute('data-status')).resolves.toBe('failing');
    await page.locator('#filter-text').fill('task_struct.__state');
    await expect(visibleCells(page).count()).resolves.toBe(3);
    await page.locator('#filter-text').fill('no such thing');
    await expect(visibleCells(page).count()).resolves.toBe(0);
    await page.locator('#filter-text').fill('');
    await expect(visibleCells(page).count()).resolves.toBe(6);
    expect(problems).toEqual([]);
    await page.close();
  });

  it('drills down from a cell to its programs, relocations, fix, verifier log and causes', async () => {
    const { page, problems } = await open(sampleReport(), 'index.html');
    await page.locator('#grid button.cell.st-failing').click();
    const detail = page.locator('#detail');
    await expect(detail.locator('#detail-title').textContent()).resolves.toContain(
      `task_state.bpf.o on ${K510}`,
    );
    await expect(detail.locator('details.program summary').textContent()).resolves.toContain('on_switch');
    const row = detail.locator('table.relocs tr.reloc');
    await expect(row.count()).resolves.toBe(1);
    await expect(row.textContent()).resolves.toContain('struct task_struct.__state');
    await expect(row.locator('td.fix').textContent()).resolves.toBe(STATE_FIX);
    await expect(row.locator('.badge').textContent()).resolves.toBe('error');
    await expect(detail.locator('pre.vlog').textContent()).resolves.toContain(
      'invalid func unknown#195896080',
    );
    await expect(detail.textContent()).resolves.toContain('no such field on this kernel');
    await expect(detail.textContent()).resolves.toContain('object: struct task_struct has no field __state');
    await page.screenshot({ path: join(SCREENSHOTS, 'html-detail-failing.png'), fullPage: true });

    // needs-guard: local -> target offsets from both the values and the specs.
    await page.locator('#grid button.cell.st-needs-guard').click();
    const ng = detail.locator('table.relocs tr.reloc');
    await expect(ng.textContent()).resolves.toContain('24 \u2192 24');
    await expect(ng.textContent()).resolves.toContain(
      '(0:1 @ offset 24) \u2192 [140] struct task_struct.__state (0:1 @ offset 24)',
    );
    await expect(ng.locator('td.fix').textContent()).resolves.toBe(STATE_FIX);
    // error cell: libbpf's refusal; infra cell: reason and console tail.
    await page.locator('#grid button.cell.st-error').click();
    await expect(detail.locator('#cell-error').textContent()).resolves.toContain('ambiguous relocation');
    await expect(detail.locator('table.relocs tr.reloc').count()).resolves.toBe(2);
    await page.locator('#grid button.cell.st-infra_error').click();
    await expect(detail.locator('#cell-infra').textContent()).resolves.toContain(
      'timeout: no result in 30 s',
    );
    await expect(detail.textContent()).resolves.toContain('Run /init as init process');
    await page.screenshot({ path: join(SCREENSHOTS, 'html-detail-infra.png'), fullPage: true });
    expect(problems).toEqual([]);
    await page.close();
  });

  it('lists each access with its classification on every kernel', async () => {
    const { page, problems } = await open(sampleReport(), 'index.html');
    const table = page.locator('#fieldtab');
    await expect(table.locator('thead th').allInnerTexts()).resolves.toEqual([
      'access',
      'kind',
      K510,
      K61,
      K612,
    ]);
    // Fields resolved everywhere are hidden until asked for.
    await expect(table.locator('tr.field').count()).resolves.toBe(2);
    const state = table.locator('tr.field', { hasText: 'struct task_struct.__state' });
    const classes = await state
      .locator('td.fc')
      .evaluateAll((tds) =>
        tds.map((td) => (td as unknown as { dataset: Record<string, string> }).dataset.classification),
      );
    expect(classes).toEqual(['error', 'needs-guard', 'needs-guard']);
    await expect(state.locator('td.fc').nth(2).textContent()).resolves.toContain('24 \u2192 32');
    const tstamp = table.locator('tr.field', { hasText: 'struct sk_buff.tstamp_type' });
    await expect(tstamp.locator('td.fc').allInnerTexts()).resolves.toEqual([
      expect.stringContaining('guarded'),
      expect.stringContaining('guarded'),
      expect.stringContaining('guarded'),
    ]);
    await page.locator('#fields-all').check();
    await expect(table.locator('tr.field').count()).resolves.toBe(3);
    // The kernel filter narrows the columns, the text filter the rows.
    await page.locator('#filter-kernel').selectOption({ label: K612 });
    await expect(page.locator('#fieldtab thead th').allInnerTexts()).resolves.toEqual([
      'access',
      'kind',
      K612,
    ]);
    await page.locator('#filter-text').fill('__state');
    await expect(page.locator('#fieldtab tr.field').count()).resolves.toBe(1);
    await page.screenshot({ path: join(SCREENSHOTS, 'html-fields.png'), fullPage: true });
    expect(problems).toEqual([]);
    await page.close();
  });

  it('stays small and fast for 50 objects x 10 kernels, and opens the cell named in the URL', async () => {
    const base = sampleReport();
    const kernels = Array.from({ length: 10 }, (_, i) => ({
      name: `k${i}`,
      source: 'Debian',
      arch: 'x86_64',
    }));
    const objects = Array.from({ length: 50 }, (_, i) => ({
      name: `obj${i}.bpf.o`,
      path: `o${i}`,
      sha256: 'c'.repeat(64),
    }));
    const statuses = ['ok', 'needs-guard', 'failing', 'infra_error', 'error'] as const;
    const cells = objects.flatMap((o, oi) =>
      kernels.map((k, ki) => ({
        kernel: k.name,
        object: o.name,
        status: statuses[(oi + ki) % statuses.length] ?? 'ok',
        programs: [stateProgram(K61), ...tracerPrograms(K612), ...tracerPrograms(K510)].map((p, pi) => ({
          ...p,
          name: `${p.name}_${pi}`,
          relocations: Array.from({ length: 5 }, (_, ri) =>
            reloc({ index: ri, access: `struct s${ri % 7}.f${(oi + ri) % 11}`, classification: 'guarded' }),
          ),
        })),
      })),
    );
    const report = ReportSchema.parse({ ...base, kernels, objects, cells });
    const html = renderHtml(report);
    expect(html.length).toBeLessThan(4_000_000);
    const path = join(out, 'big.html');
    writeFileSync(path, html);
    const page = await context.newPage();
    const started = Date.now();
    await page.goto(`${pathToFileURL(path).href}#cell=123`);
    await page.locator('#grid').waitFor({ timeout: 5_000 });
    expect(await page.locator('#grid button.cell').count()).toBe(500);
    expect(Date.now() - started).toBeLessThan(3_000);
    const cell = cells[123];
    expect(await page.locator('#detail-title').textContent()).toContain(`${cell?.object} on ${cell?.kernel}`);
    const t0 = Date.now();
    await page.locator('#filter-text').fill('obj7.bpf.o');
    expect(await visibleCells(page).count()).toBe(10);
    expect(Date.now() - t0).toBeLessThan(1_000);
    await page.close();
  });

  it('renders names made of HTML and script inert and literal', async () => {
    const { page, problems, requests } = await open(evilReport(), 'evil.html');
    await expect(page.locator('#grid button.cell').count()).resolves.toBe(6);
    await expect(page.locator('#grid tbody th').allInnerTexts()).resolves.toEqual([SCRIPT_BREAK, IMG]);
    await expect(page.locator('#grid thead th').allInnerTexts()).resolves.toEqual([
      'object \\ kernel',
      '__proto__',
      QUOTES,
      K612,
    ]);
    await page.locator('#grid button.cell.st-needs-guard').click();
    const detail = page.locator('#detail');
    await expect(detail.locator('#detail-title').textContent()).resolves.toContain(
      `${SCRIPT_BREAK} on ${QUOTES}`,
    );
    await expect(detail.locator('details.program .pname').textContent()).resolves.toBe(PROG);
    await expect(detail.locator('tr.reloc code').first().textContent()).resolves.toBe(ACCESS);
    await expect(detail.locator('tr.reloc td.fix').textContent()).resolves.toBe(IMG);
    await expect(page.locator('#fieldtab code.access').first().textContent()).resolves.toBe(ACCESS);
    const unmet = page.locator('#expectations li');
    await expect(unmet.locator('.mono').textContent()).resolves.toBe(`${SCRIPT_BREAK}: ${PROG} loads`);
    await expect(unmet.locator('.src').textContent()).resolves.toBe(`${QUOTES}:3 \u2014 ${QUOTES}`);
    await expect(unmet.locator('pre').textContent()).resolves.toBe(IMG);
    await page.locator('#filter-text').fill('<img');
    await expect(visibleCells(page).count()).resolves.toBe(6);
    await page.locator('#filter-text').fill('');
    // Nothing ran and nothing was parsed as markup.
    await expect(page.evaluate('typeof window.__pwned')).resolves.toBe('undefined');
    await expect(page.locator('img, svg, b#bold, iframe').count()).resolves.toBe(0);
    await expect(page.locator('script').count()).resolves.toBe(2);
    await page.screenshot({ path: join(SCREENSHOTS, 'html-evil.png'), fullPage: true });
    expect(requests.every((u) => u.startsWith('file://'))).toBe(true);
    expect(problems).toEqual([]);
    await page.close();
  });
});
