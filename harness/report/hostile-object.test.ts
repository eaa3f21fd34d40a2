/**
 * The proof that names in BTF are treated as the attacker's: a real BPF object (compiled
 * here with clang-19 as scripts/build-cases.sh compiles the case suite) whose .BTF string table is
 * rewritten in place so that its struct and field names are HTML, script and template injections,
 * checked by the static tier against the Debian kernels, written as the report set, and then:
 * index.html opened in Debian's chromium runs no script, creates no element from a name and shows
 * every name literally (grid, drill-down, per-field view); junit.xml is well-formed with the names
 * as text; summary.md has no HTML tag from a name outside code spans.
 *
 * html.test.ts checks the same on hand-written report data; this is the object-level proof: the
 * names travel from the ELF through the BTF reader, the CO-RE engine and the guard analysis.
 */
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Elf } from '../elf/elf.js';
import { parseBpfObject } from '../object/object.js';
import { launchChromium } from '../test-support/chromium.js';
import { buildReport } from './build.js';
import { staticReportInput } from './fixture.js';
import type { Report } from './schema.js';
import { writeReportSet } from './write.js';

const repo = path.join(import.meta.dirname, '..', '..');
const CLANG = 'clang-19';

const SCRIPT_BREAK = '</script><script>window.__pwned=1</script>';
const IMG = '<img src=x onerror=window.__pwned=2>';
const SVG = '"><svg onload=window.__pwned=3>';
const TEMPLATE = "{{constructor.constructor('window.__pwned=4')()}}";
const LINE_SEP = 'a\u2028b<b id=bold>x</b>\u2029';

/** Identifiers of the source, each long enough to be overwritten in place by its hostile name. */
const pad = (stem: string) => `${stem}_${'x'.repeat(79 - stem.length)}`;
const RENAMES: [string, string][] = [
  [pad('hostile_struct'), SCRIPT_BREAK],
  [pad('unguarded_field'), IMG],
  [pad('guarded_field'), SVG],
  [pad('line_sep_field'), LINE_SEP],
  // A flavor of a kernel type: libbpf ignores what follows "___", so this one resolves.
  [`task_struct___${pad('flavor')}`, `task_struct___${TEMPLATE}`],
];
const [STRUCT, UNGUARDED, GUARDED, LINE_SEP_FIELD, FLAVOR] = RENAMES.map(([from]) => from) as [
  string,
  string,
  string,
  string,
  string,
];

const SOURCE = `
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

struct ${STRUCT} {
	int ${UNGUARDED};
	int ${GUARDED};
	int ${LINE_SEP_FIELD};
} __attribute__((preserve_access_index));

struct ${FLAVOR} {
	int pid;
} __attribute__((preserve_access_index));

SEC("kprobe/do_nanosleep")
int reads_hostile(struct pt_regs *ctx)
{
	struct ${STRUCT} *s = (void *)PT_REGS_PARM1(ctx);
	struct ${FLAVOR} *t = (void *)bpf_get_current_task();
	int x = BPF_CORE_READ(s, ${UNGUARDED}) + BPF_CORE_READ(s, ${LINE_SEP_FIELD});

	if (bpf_core_field_exists(s->${GUARDED}))
		x += BPF_CORE_READ(s, ${GUARDED});
	x += BPF_CORE_READ(t, pid);
	bpf_printk("%d", x);
	return 0;
}
`;

/** The accesses as the report must name them, built from the hostile names alone. */
const HOSTILE_ACCESSES = [
  `struct ${SCRIPT_BREAK}.${IMG}`,
  `struct ${SCRIPT_BREAK}.${SVG}`,
  `struct ${SCRIPT_BREAK}.${LINE_SEP}`,
  `struct task_struct___${TEMPLATE}.pid`,
];

/**
 * Overwrites each name in the object's .BTF string table in place (the new name, NUL-terminated,
 * NUL-padded to the old length): every offset in the file stays valid.
 */
function rewriteBtfNames(bytes: Uint8Array, renames: readonly [string, string][]): Uint8Array {
  const out = new Uint8Array(bytes);
  const btf = Elf.parse(out).sectionHeader('.BTF');
  if (btf === undefined) throw new Error('no .BTF section');
  const view = new DataView(out.buffer, out.byteOffset + btf.offset, btf.size);
  expect(view.getUint16(0, true)).toBe(0xeb9f);
  const hdrLen = view.getUint32(4, true);
  const strOff = btf.offset + hdrLen + view.getUint32(16, true);
  const strLen = view.getUint32(20, true);
  const strings = Buffer.from(out.buffer, out.byteOffset + strOff, strLen);
  for (const [from, to] of renames) {
    const needle = Buffer.from(`\0${from}\0`);
    const at = strings.indexOf(needle);
    expect(at, `${from} in .BTF strings`).toBeGreaterThanOrEqual(0);
    expect(strings.indexOf(needle, at + 1), `${from} once in .BTF strings`).toBe(-1);
    const replacement = Buffer.from(to);
    expect(replacement.length).toBeLessThan(Buffer.byteLength(from));
    strings.fill(0, at + 1, at + 1 + Buffer.byteLength(from));
    replacement.copy(strings, at + 1);
  }
  return out;
}

let dir: string;
let report: Report;
let original: Uint8Array;
let crafted: Uint8Array;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'corematrix-hostile-'));
  const src = path.join(dir, 'hostile.bpf.c');
  const obj = path.join(dir, 'hostile.bpf.o');
  await fs.writeFile(src, SOURCE);
  // scripts/build-cases.sh's flags and include directories.
  const cc = spawnSync(
    CLANG,
    [
      '-target',
      'bpf',
      '-g',
      '-O2',
      '-Wall',
      '-Werror',
      '-D__TARGET_ARCH_x86',
      `-I${path.join(repo, 'cases', 'include')}`,
      '-idirafter',
      '/usr/include',
      '-idirafter',
      '/usr/include/x86_64-linux-gnu',
      '-c',
      src,
      '-o',
      obj,
    ],
    { encoding: 'utf8' },
  );
  // clang-19 is one of scripts/system-packages.txt: its absence is a broken machine, not a skip.
  if (cc.status !== 0) throw new Error(`${CLANG}: ${cc.error?.message ?? cc.stderr}`);
  original = new Uint8Array(await fs.readFile(obj));
  crafted = rewriteBtfNames(original, RENAMES);
  await fs.writeFile(obj, crafted);
  report = buildReport(await staticReportInput([{ file: 'hostile.bpf.o', bytes: crafted }]));
  await writeReportSet(path.join(dir, 'reports'), report);
});
afterAll(() => (dir === undefined ? undefined : fs.rm(dir, { recursive: true, force: true })));

const read = (file: string) => fs.readFile(path.join(dir, 'reports', file), 'utf8');

describe('a BPF object whose BTF names are HTML and script', () => {
  it('is a valid object, changed only inside its .BTF string table, read with the hostile names', () => {
    expect(crafted.length).toBe(original.length);
    const btf = Elf.parse(crafted).sectionHeader('.BTF')!;
    const changed = Array.from(crafted).flatMap((b, i) => (b === original[i] ? [] : [i]));
    expect(changed.length).toBeGreaterThan(0);
    expect(changed.every((i) => i > btf.offset && i < btf.offset + btf.size)).toBe(true);
    const obj = parseBpfObject(crafted, { path: 'hostile.bpf.o' });
    expect(obj.programs.map((p) => p.name)).toEqual(['reads_hostile']);
    // The report names the accesses by the hostile names, on every kernel.
    expect(report.cells.length).toBe(report.kernels.length);
    for (const cell of report.cells) {
      const accesses = new Set(cell.programs.flatMap((p) => p.relocations.map((r) => r.access)));
      for (const a of HOSTILE_ACCESSES) expect(accesses).toContain(a);
      // The unguarded reads of a struct no kernel has keep the program from loading.
      expect(cell.status).toBe('needs-guard');
      const guards = cell.programs
        .flatMap((p) => p.relocations)
        .filter((r) => r.classification === 'needs-guard');
      expect(guards.map((r) => r.access).sort()).toEqual([HOSTILE_ACCESSES[0], HOSTILE_ACCESSES[2]].sort());
    }
  });

  it('index.html runs nothing and shows every name literally: grid, drill-down, per-field view', async () => {
    const browser = await launchChromium();
    try {
      const { page, problems, requests } = await browser.open(
        path.join(dir, 'reports', 'index.html'),
        '#grid',
      );
      await expect(page.locator('#grid button.cell').count()).resolves.toBe(report.kernels.length);

      // Drill-down: the first cell's program and its relocations.
      await page.locator('#grid button.cell').first().click();
      const detail = page.locator('#detail');
      await expect(detail.locator('details.program .pname').first().textContent()).resolves.toBe(
        'reads_hostile',
      );
      const shownAccesses = await detail.locator('tr.reloc code').allTextContents();
      for (const a of HOSTILE_ACCESSES) expect(shownAccesses).toContain(a);
      const detailText = (await detail.textContent()) ?? '';
      for (const [, name] of RENAMES) expect(detailText).toContain(name);

      // The per-field view, with the fields resolved everywhere too (the flavor's pid).
      await page.locator('#fields-all').check();
      const fieldAccesses = await page.locator('#fieldtab code.access').allTextContents();
      for (const a of HOSTILE_ACCESSES) expect(fieldAccesses).toContain(a);

      // The free-text filter matches a name as text.
      await page.locator('#filter-text').fill('<img src=x');
      await expect(page.locator('#fieldtab code.access').allTextContents()).resolves.toEqual([
        HOSTILE_ACCESSES[0],
      ]);
      await page.locator('#filter-text').fill('');

      // Nothing ran, nothing became an element, nothing was fetched.
      await expect(page.evaluate('typeof window.__pwned')).resolves.toBe('undefined');
      await expect(page.locator('img, svg, iframe, b#bold, b').count()).resolves.toBe(0);
      await expect(page.locator('script').count()).resolves.toBe(2);
      await expect(page.locator('[onerror], [onload]').count()).resolves.toBe(0);
      const shots = path.join(repo, 'reports', 'screenshots');
      await fs.mkdir(shots, { recursive: true });
      await page.screenshot({ path: path.join(shots, 'html-hostile-object.png'), fullPage: true });
      expect(requests.every((u) => u.startsWith('file://'))).toBe(true);
      expect(problems).toEqual([]);
    } finally {
      await browser.close();
    }
  });

  it('junit.xml is well-formed and carries the names as text', async () => {
    const xml = await read('junit.xml');
    const lint = spawnSync('xmllint', ['--noout', '-'], { input: xml, encoding: 'utf8' });
    if (lint.error === undefined) expect(lint.stderr).toBe('');
    const script = `
import json, sys, xml.etree.ElementTree as ET
root = ET.fromstring(sys.stdin.buffer.read())
print(json.dumps({"tags": sorted({e.tag for e in root.iter()}),
                  "text": "\\n".join((f.text or "") + (f.get("message") or "") for f in root.iter("failure"))}))`;
    const parsed = spawnSync('python3', ['-c', script], { input: xml, encoding: 'utf8' });
    expect(parsed.stderr).toBe('');
    const { tags, text } = JSON.parse(parsed.stdout) as { tags: string[]; text: string };
    // Only JUnit's own elements: no name became markup.
    expect(
      tags.every((t) =>
        [
          'testsuites',
          'testsuite',
          'testcase',
          'failure',
          'skipped',
          'properties',
          'property',
          'system-out',
          'system-err',
        ].includes(t),
      ),
    ).toBe(true);
    expect(text).toContain(HOSTILE_ACCESSES[0]);
    expect(text).toContain(SCRIPT_BREAK);
  });

  it('summary.md has no HTML tag from a name outside code spans', async () => {
    const md = await read('summary.md');
    expect(md).toContain(HOSTILE_ACCESSES[0]); // in a code span, verbatim
    // CommonMark: a code span runs from a backtick run to the next run of the same length.
    const outside = md.replace(/(`+)[\s\S]*?(?<!`)\1(?!`)/g, '');
    expect(outside).not.toMatch(/<[a-zA-Z/!?]/);
  });
});
