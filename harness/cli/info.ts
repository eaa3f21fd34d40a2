import type { BtfSummary } from '../btf/summary.js';
import type { BtfSource } from '../kernels/read.js';

/** What `corematrix btf info` reports about one file. */
export interface BtfInfo {
  file: string;
  source: BtfSource;
  summary: BtfSummary;
}

/** `btf info --json`: the same facts, for programs (stable field names, numbers as numbers). */
export function infoJson(info: BtfInfo): BtfInfo {
  return { file: info.file, source: { ...info.source }, summary: info.summary };
}

/** `btf info` for a person: one fact a line, then the kinds histogram, largest first. */
export function formatInfo({ file, source, summary }: BtfInfo): string {
  const lines: [string, string][] = [['file', file]];
  const container =
    source.compression === undefined ? source.container : `${source.container}, ${source.compression}`;
  lines.push(['container', container]);
  if (source.release !== undefined) lines.push(['release', source.release]);
  if (summary.split) {
    const lastId = summary.firstId + summary.ownTypes - 1;
    lines.push([
      'types',
      `${summary.ownTypes} (ids ${summary.firstId}..${lastId}; ${summary.totalTypes} with the base)`,
    ]);
  } else {
    lines.push(['types', String(summary.ownTypes)]);
  }
  lines.push(['size', `${summary.bytes} bytes (types ${summary.typeBytes}, strings ${summary.stringBytes})`]);
  lines.push(['byte order', `${summary.byteOrder}-endian`]);

  const labelWidth = Math.max(...lines.map(([label]) => label.length)) + 2;
  let text = '';
  for (const [label, value] of lines) text += `${`${label}:`.padEnd(labelWidth)}${value}\n`;

  const kinds = Object.entries(summary.kinds).sort(([a, x], [b, y]) => y - x || a.localeCompare(b));
  text += 'kinds:\n';
  const kindWidth = Math.max(0, ...kinds.map(([kind]) => kind.length)) + 2;
  const countWidth = Math.max(0, ...kinds.map(([, count]) => String(count).length));
  for (const [kind, count] of kinds)
    text += `  ${kind.padEnd(kindWidth)}${String(count).padStart(countWidth)}\n`;
  return text;
}
