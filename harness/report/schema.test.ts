/**
 * docs/report.schema.json is generated from the zod schema; this test fails when the committed file
 * drifts from it. Regenerate: COREMATRIX_UPDATE_SCHEMA=1 npx vitest run harness/report/schema.test.ts
 */

import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { caseObjects, staticSuiteReport } from './fixture.js';
import { reportJsonSchema } from './schema.js';

const file = path.join(import.meta.dirname, '..', '..', 'docs', 'report.schema.json');

function reportJsonSchemaText(): string {
  return `${JSON.stringify(reportJsonSchema(), null, 2)}\n`;
}

describe('docs/report.schema.json', () => {
  it('is what reportJsonSchema() generates', () => {
    const text = reportJsonSchemaText();
    if (process.env.COREMATRIX_UPDATE_SCHEMA === '1') writeFileSync(file, text);
    expect(
      readFileSync(file, 'utf8'),
      'regenerate: COREMATRIX_UPDATE_SCHEMA=1 npx vitest run harness/report/schema.test.ts',
    ).toBe(text);
  });

  it('describes a report: the required top-level fields and the cell statuses', () => {
    const schema = JSON.parse(readFileSync(file, 'utf8'));
    expect(schema.required).toEqual(
      expect.arrayContaining([
        'schemaVersion',
        'generatedAt',
        'corematrix',
        'run',
        'kernels',
        'objects',
        'cells',
      ]),
    );
    expect(JSON.stringify(schema)).toContain('"needs-guard"');
  });
});

/** python3's jsonschema (Draft 2020-12), when installed: the problems it finds in `doc`. */
function jsonschemaErrors(doc: unknown): string[] {
  const script = `
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
doc = json.load(sys.stdin)
print(json.dumps([e.message[:200] for e in jsonschema.Draft202012Validator(schema).iter_errors(doc)]))`;
  const r = spawnSync('python3', ['-c', script, file], { input: JSON.stringify(doc), encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout);
}
const hasJsonschema = spawnSync('python3', ['-c', 'import jsonschema']).status === 0;

describe.skipIf(!hasJsonschema || caseObjects().length === 0)(
  'a JSON Schema validator (python3 jsonschema)',
  () => {
    it('accepts the case suite report and refuses a broken one', async () => {
      const report = await staticSuiteReport();
      expect(jsonschemaErrors(report)).toEqual([]);
      const broken = { ...report, schemaVersion: 2, cells: [{ ...report.cells[0], status: 'purple' }] };
      expect(jsonschemaErrors(broken).length).toBeGreaterThanOrEqual(2);
    });
  },
);
