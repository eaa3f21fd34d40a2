import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { caseObjects, staticSuiteReport } from './fixture.js';
import { failureText, renderJunit, serializeXml, xmlText } from './junit.js';
import type { Report, ReportProgram } from './schema.js';

const hasXmllint = spawnSync('xmllint', ['--version']).status === 0;

/** xmllint --noout: exit 0 and no complaint when well-formed. */
function xmllint(xml: string): string {
  const r = spawnSync('xmllint', ['--noout', '-'], { input: xml, encoding: 'utf8' });
  return r.status === 0 ? '' : r.stderr;
}

/** python3's xml.etree: the testcases' (classname, name, child tags, failure message) as parsed. */
function etree(xml: string): [string, string, string[], string | null][] {
  const script = `
import json, sys, xml.etree.ElementTree as ET
root = ET.fromstring(sys.stdin.buffer.read())
out = []
for tc in root.iter('testcase'):
    f = tc.find('failure')
    out.append([tc.get('classname'), tc.get('name'), [c.tag for c in tc], None if f is None else f.get('message')])
print(json.dumps(out))`;
  const r = spawnSync('python3', ['-c', script], { input: xml, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout);
}

const HOSTILE = `</testcase><x a="1">&amp;'"\u0000\u0001\u001b\uFFFE\uD800]]><!-- \t\nnext`;
const CLEAN = `</testcase><x a="1">&amp;'"]]><!-- \t\nnext`;

const program = (name: string, over: Partial<ReportProgram> = {}): ReportProgram => ({
  name,
  section: 'kprobe/x',
  relocations: [],
  ...over,
});

const hostileReport: Report = {
  schemaVersion: 1,
  generatedAt: '2026-01-01T00:00:00.000Z',
  corematrix: { version: 'test' },
  run: { tiers: ['static', 'vm'], durationMs: 1234 },
  kernels: [
    { name: `k${HOSTILE}`, source: 'test', arch: 'x86_64' },
    { name: 'k2', source: 'test', arch: 'x86_64' },
  ],
  objects: [{ name: `o${HOSTILE}`, path: 'o', sha256: '00' }],
  cells: [
    {
      kernel: `k${HOSTILE}`,
      object: `o${HOSTILE}`,
      status: 'failing',
      programs: [
        program(`p${HOSTILE}`, {
          vm: {
            verdict: 'rejected',
            errnoName: 'EACCES',
            cause: `R1 ${HOSTILE}`,
            logExcerpt: `0: ${HOSTILE}`,
          },
        }),
        program('fine', { vm: { verdict: 'loaded' } }),
        program('guard', {
          static: {
            verdict: 'rejected',
            reasons: [
              {
                source: 'guard',
                message:
                  'CO-RE relocation struct s.f failed; fix: guard it: if (bpf_core_field_exists(x)) { … }',
              },
            ],
            unknown: [],
          },
          relocations: [
            {
              section: 's',
              index: 0,
              function: 'guard',
              insn: 1,
              kind: 'byte_off',
              access: `struct s.f${HOSTILE}`,
              spec: '0:0',
              result: 'poisoned',
              classification: 'needs-guard',
              fix: 'guard it: if (bpf_core_field_exists(x)) { … }',
            },
          ],
        }),
      ],
    },
    {
      kernel: 'k2',
      object: `o${HOSTILE}`,
      status: 'infra_error',
      infra: { reason: 'timed out', consoleTail: HOSTILE },
      programs: [program('fine', { vm: { verdict: 'infra_error', cause: 'timeout' } })],
    },
  ],
};

describe('the XML serializer', () => {
  it('escapes markup and drops characters XML 1.0 forbids', () => {
    expect(xmlText(HOSTILE)).toBe(
      '&lt;/testcase&gt;&lt;x a=&quot;1&quot;&gt;&amp;amp;&apos;&quot;]]&gt;&lt;!-- \t\nnext',
    );
    expect(
      serializeXml({
        name: 'a',
        attributes: { v: 'x\ny', u: undefined },
        children: [{ name: 'b', text: '<' }],
      }),
    ).toBe('<a v="x&#10;y">\n  <b>&lt;</b>\n</a>');
  });
});

describe('junit.xml', () => {
  it.skipIf(!hasXmllint)('hostile names: well-formed for xmllint', () => {
    expect(xmllint(renderJunit(hostileReport))).toBe('');
  });

  it('hostile names: parsed back exactly (minus illegal characters); failure, skipped, needs-guard fix', () => {
    const xml = renderJunit(hostileReport);
    const cases = etree(xml);
    expect(cases).toEqual([
      [`o${CLEAN}`, `p${CLEAN}`, ['failure'], `R1 </testcase><x a="1">&amp;'"]]><!-- \t`],
      [`o${CLEAN}`, 'fine', [], null],
      [
        `o${CLEAN}`,
        'guard',
        ['failure'],
        'CO-RE relocation struct s.f failed; fix: guard it: if (bpf_core_field_exists(x)) { … }',
      ],
      [`o${CLEAN}`, 'fine', ['skipped'], null],
    ]);
    expect(xml).toMatch(
      /<failure message="CO-RE relocation struct s.f failed; fix: [^"]*" type="needs-guard">/,
    );
    expect(xml).toMatch(/<failure message="R1 [^"]*" type="failing">/);
    expect(xml).toContain('guard it: if (bpf_core_field_exists(x)) { … }');
    expect(xml).toMatch(
      /<testsuites name="corematrix" tests="4" failures="2" errors="0" skipped="1" time="1.234">/,
    );
  });

  it('expectations: a testsuite of their own, failures with what broke them, hostile names parsed back', () => {
    const xml = renderJunit({
      ...hostileReport,
      expectations: [
        {
          name: `o${HOSTILE}: loads`,
          source: 'm.yaml:7',
          status: 'failed',
          message: `k: ${HOSTILE}\nk2: broke too`,
        },
        { name: 'o: rejected on k2', source: 'x.case.ts', status: 'passed', kernels: ['k2'] },
        { name: 'o: ok on k3', source: 'x.case.ts', status: 'skipped', message: 'nothing to check' },
      ],
    });
    if (hasXmllint) expect(xmllint(xml)).toBe('');
    expect(etree(xml).slice(-3)).toEqual([
      ['m.yaml:7', `o${CLEAN}: loads`, ['failure'], `k: </testcase><x a="1">&amp;'"]]><!-- \t`],
      ['x.case.ts', 'o: rejected on k2', [], null],
      ['x.case.ts', 'o: ok on k3', ['skipped'], null],
    ]);
    expect(xml).toMatch(/<testsuite name="expectations" tests="3" failures="1" errors="0" skipped="1" /);
    expect(xml).toMatch(/<testsuites name="corematrix" tests="7" failures="3" errors="0" skipped="2" /);
    expect(xml).toContain('k2: broke too');
    expect(renderJunit(hostileReport)).not.toContain('name="expectations"');
  });

  it.skipIf(caseObjects().length === 0)(
    'the case suite: a testsuite per kernel, a testcase per program',
    async () => {
      const report = await staticSuiteReport();
      const xml = renderJunit(report);
      if (hasXmllint) expect(xmllint(xml)).toBe('');
      const cases = etree(xml);
      const programs = report.cells.reduce(
        (n, c) => n + c.programs.length + (c.status === 'error' ? 1 : 0),
        0,
      );
      expect(cases).toHaveLength(programs);
      expect(xml.match(/<testsuite /g)).toHaveLength(report.kernels.length);
      const failing = report.cells
        .flatMap((c) => c.programs)
        .filter((p) => p.static?.verdict === 'rejected').length;
      expect(cases.filter((c) => c[2].includes('failure')).length).toBeGreaterThanOrEqual(failing);
    },
  );
});

describe('failureText', () => {
  it('a VM rejection: verdict, errno, log excerpt, then the relocations needing a guard with their fixes', () => {
    const t = failureText(
      program('p', {
        vm: {
          verdict: 'rejected',
          errnoName: 'EINVAL',
          cause: 'invalid func unknown#195896080 at insn 1 → failed CO-RE relocation struct s.f',
          logExcerpt: '1: (85) call unknown#195896080',
        },
        relocations: [
          {
            section: 's',
            index: 0,
            function: 'p',
            insn: 1,
            kind: 'byte_off',
            access: 'struct s.f',
            spec: '0:1',
            result: 'poisoned',
            classification: 'needs-guard',
            fix: 'guard it',
          },
        ],
      }),
    );
    expect(t.message).toBe('invalid func unknown#195896080 at insn 1 → failed CO-RE relocation struct s.f');
    expect(t.body.split('\n')).toEqual([
      `VM: rejected (EINVAL): ${t.message}`,
      'verifier log:',
      '1: (85) call unknown#195896080',
      'needs a guard: struct s.f — guard it',
    ]);
  });
});
