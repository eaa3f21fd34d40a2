/**
 * A baseline diff as plain text for a terminal or a CI log (`corematrix diff OLD NEW`): regressions
 * first, then expectations newly failing, fixes, new fields needing a guard, kernels and objects
 * added or removed.
 *
 * Names come from objects and BTF (attacker-controlled): control characters, line and paragraph
 * separators and bidirectional overrides are shown as \u escapes, so a name cannot move the
 * cursor, recolour the terminal, forge a line of its own or reorder what is printed around it.
 */

import type { ProgramChange, ReportDiff } from './diff.js';

const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/** `s` with every character that would act on a terminal rather than print shown as \uXXXX. */
export function plainText(s: string): string {
  return s.replace(UNPRINTABLE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

function change(c: ProgramChange, why: 'now' | 'was'): string {
  const t = plainText;
  const cause = c.cause === '' ? '' : why === 'now' ? `: ${t(c.cause)}` : ` (it failed: ${t(c.cause)})`;
  return `  ${t(c.object)} ${t(c.program)} on ${t(c.kernel)}: was ${c.was}, now ${c.now}${cause}`;
}

export function renderDiffText(diff: ReportDiff): string {
  const t = plainText;
  const out: string[] = [];
  if (diff.regressions.length === 0) out.push('No regressions.');
  else {
    out.push(`${plural(diff.regressions.length, 'regression')}:`);
    out.push(...diff.regressions.map((c) => change(c, 'now')));
  }
  if (diff.newlyFailingExpectations.length > 0) {
    out.push(`${plural(diff.newlyFailingExpectations.length, 'expectation')} newly failing:`);
    out.push(
      ...diff.newlyFailingExpectations.map(
        (x) =>
          `  ${t(x.name)} (${t(x.source)})${x.message === undefined ? '' : `: ${t(x.message.split('\n')[0] ?? '')}`}`,
      ),
    );
  }
  if (diff.fixes.length > 0) {
    out.push(`${plural(diff.fixes.length, 'fix', 'fixes')}:`);
    out.push(...diff.fixes.map((c) => change(c, 'was')));
  }
  if (diff.newNeedsGuard.length > 0) {
    out.push(`${plural(diff.newNeedsGuard.length, 'new field')} needing a guard:`);
    out.push(
      ...diff.newNeedsGuard.map(
        (f) =>
          `  ${t(f.access)} in ${t(f.object)} (${t(f.program)}) on ${t(f.kernel)}${f.fix === undefined ? '' : `: ${t(f.fix)}`}`,
      ),
    );
  }
  const sets: [string, string[]][] = [
    ['kernels added', diff.kernelsAdded],
    ['kernels removed', diff.kernelsRemoved],
    ['objects added', diff.objectsAdded],
    ['objects removed', diff.objectsRemoved],
  ];
  for (const [what, names] of sets) {
    if (names.length > 0) out.push(`${what}: ${names.map(t).join(', ')}`);
  }
  return `${out.join('\n')}\n`;
}
