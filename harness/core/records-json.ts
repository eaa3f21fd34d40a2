import type { RelocationRecord } from './relocate.js';

/**
 * One line of `corematrix relocate --json`. `old` and `new` are the instruction's values as u64;
 * they are written as exact JSON numbers (values above 2^53 need a big-number-aware reader), so
 * they compare digit for digit with libbpf's log.
 */
export function relocationRecordJson(object: string, r: RelocationRecord): string {
  const fields: [string, string][] = [
    ['object', JSON.stringify(object)],
    ['section', JSON.stringify(r.section)],
    ['index', String(r.index)],
    ['function', JSON.stringify(r.function)],
    ['insn', String(r.insn)],
    ['kind', JSON.stringify(r.kind)],
    ['access', JSON.stringify(r.access)],
    ['spec', JSON.stringify(r.spec)],
    ['result', JSON.stringify(r.result)],
  ];
  if (r.old !== undefined) fields.push(['old', r.old.toString()]);
  if (r.new !== undefined) fields.push(['new', r.new.toString()]);
  if (r.memSize !== undefined) fields.push(['memSize', JSON.stringify(r.memSize)]);
  if (r.message !== undefined) fields.push(['message', JSON.stringify(r.message)]);
  if (r.localSpec !== undefined) fields.push(['localSpec', JSON.stringify(r.localSpec)]);
  if (r.targetSpec !== undefined) fields.push(['targetSpec', JSON.stringify(r.targetSpec)]);
  return `{${fields.map(([k, v]) => `"${k}":${v}`).join(',')}}`;
}
