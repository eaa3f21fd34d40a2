/**
 * junit.xml from report.json: what CI systems display natively. A testsuite per kernel, a testcase
 * per object × program (classname = the object, name = the program); a failing program carries its
 * cause (failure type `needs-guard` when unguarded CO-RE accesses alone make it fail, else `failing`) (the VM's, else the static tier's reasons, with the fixes of relocations that need a
 * guard), an infra error is skipped (its truth is unknown), and an object libbpf refuses on a
 * kernel is one failing testcase named `(object)`. The run's expectations (matrix.yaml `expect:`,
 * case files) are one more testsuite, "expectations": a testcase each (classname = where it is
 * declared), failing with what broke it, skipped when the run had nothing to check it on.
 */

import { failsOnlyForGuards, programOutcome } from './build.js';
import type { Report, ReportCell, ReportExpectation, ReportProgram } from './schema.js';

export interface XmlElement {
  name: string;
  attributes?: Record<string, string | number | undefined>;
  children?: XmlElement[];
  text?: string;
}

/** Characters XML 1.0 does not allow at all (not even escaped), lone surrogates included. */
const ILLEGAL = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;
const ENTITIES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&apos;',
};

/** Text content: illegal characters removed, markup escaped. */
export function xmlText(s: string): string {
  return s.replace(ILLEGAL, '').replace(/[&<>"']/g, (c) => ENTITIES[c]!);
}

/** An attribute value: as text, and whitespace kept (a parser would normalise raw tabs and newlines). */
function xmlAttr(s: string): string {
  return xmlText(s).replace(/[\t\n\r]/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function serializeXml(e: XmlElement, indent = ''): string {
  const attrs = Object.entries(e.attributes ?? {})
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => ` ${k}="${xmlAttr(String(v))}"`)
    .join('');
  const children = e.children ?? [];
  if (children.length === 0 && e.text === undefined) return `${indent}<${e.name}${attrs}/>`;
  if (children.length === 0) return `${indent}<${e.name}${attrs}>${xmlText(e.text ?? '')}</${e.name}>`;
  const inner = children.map((c) => serializeXml(c, `${indent}  `)).join('\n');
  return `${indent}<${e.name}${attrs}>\n${inner}\n${indent}</${e.name}>`;
}

const firstLine = (s: string) => s.split('\n')[0] ?? '';

/** Why a program fails, in words: the VM's cause and log, else the static reasons; fixes last. */
export function failureText(p: ReportProgram): { message: string; body: string } {
  const lines: string[] = [];
  let message: string;
  const fromVm = p.vm !== undefined && p.vm.verdict !== 'infra_error' && p.vm.verdict !== 'loaded';
  if (fromVm && p.vm !== undefined) {
    message = p.vm.cause ?? p.vm.verdict;
    lines.push(
      `VM: ${p.vm.verdict}${p.vm.errnoName === undefined ? '' : ` (${p.vm.errnoName})`}: ${message}`,
    );
    if (p.vm.logExcerpt !== undefined) lines.push('verifier log:', p.vm.logExcerpt);
  } else {
    const reasons = p.static?.reasons ?? [];
    message = reasons[0]?.message ?? 'predicted rejected';
    for (const r of reasons) lines.push(`static (${r.source}): ${r.message}`);
  }
  // The static reasons name the failed relocations and their fixes already.
  for (const r of fromVm ? p.relocations : []) {
    if (r.classification === 'needs-guard')
      lines.push(`needs a guard: ${r.access}${r.fix === undefined ? '' : ` — ${r.fix}`}`);
  }
  if (p.disagreement !== undefined) lines.push(`tiers disagree: ${p.disagreement}`);
  return { message: firstLine(message), body: lines.join('\n') };
}

function testcase(cell: ReportCell, p: ReportProgram): XmlElement {
  const tc: XmlElement = {
    name: 'testcase',
    attributes: { classname: cell.object, name: p.name },
    children: [],
  };
  const vmInfra = p.vm?.verdict === 'infra_error';
  if (cell.status === 'infra_error' || (vmInfra && programOutcome(p) === 'unknown')) {
    tc.children!.push({
      name: 'skipped',
      attributes: {
        message: `infra error: ${firstLine(cell.infra?.reason ?? p.vm?.cause ?? 'the VM failed')}`,
      },
    });
  } else if (programOutcome(p) === 'fails') {
    const { message, body } = failureText(p);
    const type = cell.status === 'error' ? 'error' : failsOnlyForGuards(p) ? 'needs-guard' : 'failing';
    tc.children!.push({ name: 'failure', attributes: { message, type }, text: body });
  }
  return tc;
}

function expectationCase(e: ReportExpectation): XmlElement {
  const tc: XmlElement = {
    name: 'testcase',
    attributes: { classname: e.source, name: e.name },
    children: [],
  };
  const on = e.kernels === undefined ? [] : [`checked on: ${e.kernels.join(', ')}`];
  if (e.status === 'failed') {
    const message = e.message ?? 'unmet';
    tc.children!.push({
      name: 'failure',
      attributes: { message: firstLine(message), type: 'expectation' },
      text: [message, ...on].join('\n'),
    });
  } else if (e.status === 'skipped') {
    tc.children!.push({ name: 'skipped', attributes: { message: firstLine(e.message ?? 'not checked') } });
  }
  return tc;
}

function testsuite(name: string, hostname: string, cases: XmlElement[], timestamp: string) {
  const count = (n: string) => cases.filter((c) => c.children?.some((x) => x.name === n)).length;
  return {
    name: 'testsuite',
    attributes: {
      name,
      tests: cases.length,
      failures: count('failure'),
      errors: 0,
      skipped: count('skipped'),
      timestamp,
      hostname,
    },
    children: cases,
  } satisfies XmlElement;
}

export function renderJunit(report: Report): string {
  const suites = report.kernels.map((k) => {
    const cells = report.cells.filter((c) => c.kernel === k.name);
    const cases: XmlElement[] = [];
    for (const cell of cells) {
      if (cell.status === 'error') {
        cases.push({
          name: 'testcase',
          attributes: { classname: cell.object, name: '(object)' },
          children: [
            {
              name: 'failure',
              attributes: { message: firstLine(cell.error ?? 'libbpf refuses the object'), type: 'error' },
              text: cell.error ?? '',
            },
          ],
        });
      }
      for (const p of cell.programs) cases.push(testcase(cell, p));
    }
    return testsuite(k.name, k.source, cases, report.generatedAt);
  });
  if (report.expectations !== undefined && report.expectations.length > 0) {
    suites.push(
      testsuite(
        'expectations',
        report.run.matrix ?? 'corematrix',
        report.expectations.map(expectationCase),
        report.generatedAt,
      ),
    );
  }
  const total = (a: 'tests' | 'failures' | 'skipped') => suites.reduce((n, s) => n + s.attributes[a], 0);
  const root: XmlElement = {
    name: 'testsuites',
    attributes: {
      name: 'corematrix',
      tests: total('tests'),
      failures: total('failures'),
      errors: 0,
      skipped: total('skipped'),
      time: (report.run.durationMs / 1000).toFixed(3),
    },
    children: suites,
  };
  return `<?xml version="1.0" encoding="UTF-8"?>\n${serializeXml(root)}\n`;
}
