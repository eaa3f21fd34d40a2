/**
 * The globs of matrix.yaml's `cases`: `*` and `?` within one path segment, `**` for any number of
 * segments, `[abc]`/`[a-z]`/`[!a]` character classes and `{a,b}` alternatives. Like the shell, `*`
 * does not match a name starting with a dot unless the pattern's segment does.
 */

import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';

/** A regular expression for one path segment's pattern (no slashes in it). */
function segmentRegExp(segment: string): RegExp {
  let re = '';
  for (let i = 0; i < segment.length; i++) {
    const c = segment[i]!;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const close = segment.indexOf(']', i + 2);
      if (close < 0) re += '\\[';
      else {
        let body = segment.slice(i + 1, close);
        if (body.startsWith('!')) body = `^${body.slice(1)}`;
        re += `[${body.replace(/\\/g, '\\\\')}]`;
        i = close;
      }
    } else if (c === '{') {
      const close = segment.indexOf('}', i);
      if (close < 0) re += '\\{';
      else {
        const alternatives = segment.slice(i + 1, close).split(',');
        re += `(?:${alternatives.map((a) => segmentRegExp(a).source.slice(1, -1)).join('|')})`;
        i = close;
      }
    } else re += c.replace(/[.+^$()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

export function hasMagic(segment: string): boolean {
  return /[*?[{]/.test(segment);
}

/** Checks a pattern's syntax; returns what is wrong, or undefined. */
export function globProblem(pattern: string): string | undefined {
  if (pattern === '') return 'the pattern is empty';
  if (pattern.includes('\0')) return 'the pattern holds a NUL byte';
  for (const segment of pattern.split('/')) {
    if (segment.includes('**') && segment !== '**')
      return `"**" must be a whole path segment, not "${segment}"`;
    let depth = 0;
    for (const c of segment) {
      if (c === '{') depth++;
      else if (c === '}') depth--;
      if (depth < 0) return `unbalanced "}" in "${segment}"`;
    }
    if (depth !== 0) return `unbalanced "{" in "${segment}"`;
  }
  return undefined;
}

/**
 * The files (not directories) matching `pattern`, relative to `base` unless absolute, sorted.
 * Returns absolute paths.
 */
export function expandGlob(pattern: string, base: string): string[] {
  const absolute = path.isAbsolute(pattern);
  const segments = pattern.split('/').filter((s, i) => s !== '' || (i === 0 && absolute));
  const start = absolute ? '/' : base;
  const found = new Set<string>();
  walk(start, absolute ? segments.slice(1) : segments, found);
  return [...found].sort();
}

function listDir(dir: string): { name: string; dir: boolean }[] {
  try {
    return readdirSync(dir, { withFileTypes: true }).map((d) => {
      let isDir = d.isDirectory();
      if (d.isSymbolicLink()) {
        try {
          isDir = statSync(path.join(dir, d.name)).isDirectory();
        } catch {
          isDir = false;
        }
      }
      return { name: d.name, dir: isDir };
    });
  } catch {
    return [];
  }
}

function isFile(file: string): boolean {
  try {
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

function walk(dir: string, segments: string[], found: Set<string>): void {
  const [segment, ...rest] = segments;
  if (segment === undefined) return;
  if (segment === '**') {
    // Zero segments, or one more directory and still `**`.
    walk(dir, rest, found);
    if (rest.length === 0) return;
    for (const entry of listDir(dir)) {
      if (entry.dir && !entry.name.startsWith('.')) walk(path.join(dir, entry.name), segments, found);
    }
    return;
  }
  if (!hasMagic(segment)) {
    const next = path.join(dir, segment);
    if (rest.length === 0) {
      if (isFile(next)) found.add(next);
    } else walk(next, rest, found);
    return;
  }
  const re = segmentRegExp(segment);
  for (const entry of listDir(dir)) {
    if (entry.name.startsWith('.') && !segment.startsWith('.')) continue;
    if (!re.test(entry.name)) continue;
    const next = path.join(dir, entry.name);
    if (rest.length === 0) {
      if (!entry.dir) found.add(next);
    } else if (entry.dir) walk(next, rest, found);
  }
}

/** Whether a relative path matches a pattern (same syntax as expandGlob), without the file system. */
export function matchesGlob(pattern: string, file: string): boolean {
  if (globProblem(pattern) !== undefined) return false;
  const match = (segments: string[], parts: string[]): boolean => {
    const [segment, ...rest] = segments;
    if (segment === undefined) return parts.length === 0;
    if (segment === '**') {
      return parts.some((_, i) => match(rest, parts.slice(i))) || match(rest, []);
    }
    const [part, ...more] = parts;
    if (part === undefined) return false;
    if (part.startsWith('.') && !segment.startsWith('.') && hasMagic(segment)) return false;
    return (hasMagic(segment) ? segmentRegExp(segment).test(part) : segment === part) && match(rest, more);
  };
  return match(
    pattern.split('/').filter((s) => s !== ''),
    file.split('/').filter((s) => s !== ''),
  );
}
