/**
 * docs/report.schema.json is generated from the zod schema; this test fails when the committed file
 * drifts from it. Regenerate: COREMATRIX_UPDATE_SCHEMA=1 npx vitest run harness/report/schema.test.ts
 */

import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
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
