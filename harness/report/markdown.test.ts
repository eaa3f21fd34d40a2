import { describe, expect, it } from 'vitest';
import { diffReports } from './diff.js';
import { caseObjects, staticSuiteReport } from './fixture.js';
import { mdCode, mdEscape, renderMarkdown, STATUS_LABEL } from './markdown.js';
import type { Report } from './schema.js';

const HOSTILE =
  '<img src=x onerror=alert(1)> [x](javascript:alert(1)) | `c` *b* _i_ @admin #1 :smile: \\ &amp;\nnext';

/** What a CommonMark reader shows for escaped text: backslash escapes and the three entities undone. */
function shown(md: string): string {
  return md
    .replace(/\\([!-/:-@[-`{-~])/g, '$1')
    .replace(/&lt;|&gt;|&amp;/g, (m) => ({ '&lt;': '<', '&gt;': '>', '&amp;': '&' })[m]!);
}

describe('mdCode', () => {
  it('a code span whose fence is longer than any backtick run inside', () => {
    expect(mdCode('struct s.f')).toBe('` struct s.f `');
    expect(mdCode('a `` b\nc')).toBe('``` a `` b c ```');
  });
});

describe('mdEscape', () => {
  it('shows the name as written (line breaks as spaces), with no live markup left', () => {
    const md = mdEscape(HOSTILE);
    expect(shown(md)).toBe(HOSTILE.replace('\n', ' '));
    // Every ASCII punctuation character is escaped, or is the & / ; of an entity.
    const bare = md.replace(/\\[!-/:-@[-`{-~]/g, '').replace(/&(lt|gt|amp);/g, '');
    expect(bare).not.toMatch(/[!-/:-@[-`{-~]/);
    expect(md).not.toContain('\n');
  });
});

const report: Report = {
  schemaVersion: 1,
  generatedAt: '2026-01-01T00:00:00.000Z',
  corematrix: { version: 'test' },
  run: { tiers: ['static'], durationMs: 1 },
  kernels: [
    { name: `k|${HOSTILE}`, source: 't', arch: 'x86_64' },
    { name: 'k2', source: 't', arch: 'x86_64' },
  ],
  objects: [{ name: `o|${HOSTILE}`, path: 'o', sha256: '00' }],
  cells: [
    {
      kernel: `k|${HOSTILE}`,
      object: `o|${HOSTILE}`,
      status: 'needs-guard',
      programs: [
        {
          name: 'p',
          section: 's',
          static: {
            verdict: 'rejected',
            reasons: [{ source: 'guard', message: 'CO-RE relocation' }],
            unknown: [],
          },
          relocations: [
            {
              section: 's',
              index: 0,
              function: 'p',
              insn: 1,
              kind: 'byte_off',
              access: `struct ${HOSTILE}.f`,
              spec: '0:1',
              result: 'poisoned',
              classification: 'needs-guard',
              fix: 'guard it: if (bpf_core_field_exists(p->f)) { … }',
            },
          ],
        },
      ],
    },
    { kernel: 'k2', object: `o|${HOSTILE}`, status: 'ok', programs: [] },
  ],
};

describe('summary.md', () => {
  it('the grid: one row per object, one column per kernel, no stray cell separators', () => {
    const md = renderMarkdown(report);
    const rows = md.split('\n').filter((l) => l.startsWith('|'));
    expect(rows).toHaveLength(3);
    for (const r of rows) expect(r.replace(/\\\|/g, '').split('|')).toHaveLength(5);
    expect(rows[2]).toContain(`| ${STATUS_LABEL['needs-guard']} | ${STATUS_LABEL.ok} |`);
    // Outside code spans (where nothing is markup), no live HTML, link or mention.
    const outside = md.replace(/(`+) .*? \1/g, '');
    expect(outside).not.toMatch(/<img|\]\(javascript|(^|[^\\])@admin/);
    expect(md).toContain(mdCode(`struct ${HOSTILE}.f`));
  });

  it('needs-guard fields with their fix; regressions first when a diff is given', () => {
    const before: Report = {
      ...report,
      cells: report.cells.map((c) => ({
        ...c,
        status: 'ok' as const,
        programs: c.programs.map((p) => ({
          ...p,
          static: { verdict: 'loads' as const, reasons: [], unknown: [] },
          relocations: [],
        })),
      })),
    };
    const md = renderMarkdown(report, { diff: diffReports(before, report) });
    const at = (s: string) => md.indexOf(s);
    expect(at('### ❌ 1 regression')).toBeGreaterThan(0);
    expect(at('### ❌ 1 regression')).toBeLessThan(at('| object |'));
    expect(at('| object |')).toBeLessThan(at('### Fields that need a guard'));
    expect(md).toContain(mdCode('guard it: if (bpf_core_field_exists(p->f)) { … }'));
    expect(md).toContain('### ⚠️ 1 new field needing a guard');
    expect(renderMarkdown(report, { diff: diffReports(report, report) })).toContain(
      'No regressions against the baseline.',
    );
  });

  it('unmet expectations right after the regressions (first without a diff), names escaped', () => {
    const withExpectations: Report = {
      ...report,
      expectations: [
        { name: 'o: p loads on all kernels', source: 'm.yaml:4', status: 'passed', kernels: ['k1'] },
        {
          name: `o: ${HOSTILE}`,
          source: 'm.yaml:9',
          status: 'failed',
          // One line per failure (the runner flattens each).
          message: `k1: o ${HOSTILE.replace('\n', ' ')} is rejected\nk2: o has no program q`,
        },
        {
          name: 'o: q loads',
          source: 'o.case.ts',
          status: 'skipped',
          message: 'nothing to check in this run',
        },
      ],
    };
    const plain = renderMarkdown(withExpectations);
    const lines = plain.split('\n');
    const heading = lines.findIndex((l) => l.startsWith('### '));
    expect(lines[heading]).toBe('### ❌ 1 unmet expectation');
    expect(heading).toBeLessThan(lines.findIndex((l) => l.startsWith('| object |')));
    const item = lines[heading + 2]!;
    expect(shown(item)).toBe(
      `- **o: ${HOSTILE.replace('\n', ' ')}** (m.yaml:9): k1: o ${HOSTILE.replace('\n', ' ')} is rejected (and 1 more)`,
    );
    expect(item).not.toMatch(/<img|\]\(|\n/);
    expect(plain).toContain('Expectations: 1 met, 1 unmet, 1 not checked in this run.');
    const before: Report = { ...withExpectations, expectations: [] };
    const md = renderMarkdown(withExpectations, { diff: diffReports(before, withExpectations) });
    const at = (s: string) => md.indexOf(s);
    expect(at('No regressions against the baseline.')).toBeLessThan(at('### ❌ 1 unmet expectation'));
    expect(at('### ❌ 1 unmet expectation')).toBeLessThan(at('| object |'));
    const met: Report = { ...withExpectations, expectations: withExpectations.expectations!.slice(0, 1) };
    expect(renderMarkdown(met)).toContain('Expectations: 1 met, 0 unmet.');
    expect(renderMarkdown(report)).not.toContain('Expectations:');
  });

  it.skipIf(caseObjects().length === 0)(
    'the case suite: every cell in the grid, kernel_changes fields listed with fixes',
    async () => {
      const r = await staticSuiteReport();
      const md = renderMarkdown(r);
      const rows = md.split('\n').filter((l) => l.startsWith('|'));
      expect(rows).toHaveLength(r.objects.length + 2);
      expect(md).toContain('### Fields that need a guard');
      expect(md).toMatch(/kernel\\_changes\\\.bpf\\\.o.*: ` guard it/);
      expect(md.length).toBeLessThan(65_536); // a PR comment's limit
    },
  );
});
