/**
 * `corematrix check OBJ... [--matrix FILE] [--kernel NAME...] [--json]`: the static tier alone.
 * For every object × matrix kernel × program, the predicted verdict (`loads` / `rejected`) and its
 * reasons, from the kernel's BTF and config only: no VM, no network. A Debian kernel that is not
 * in the cache is bad usage (exit 2) with one line saying to run `corematrix kernels fetch`.
 *
 * Exit codes: 0 when it ran (rejections are the finding); 1 when an object cannot be read as a BPF
 * object; 2 bad usage (unknown kernel, kernel not fetched, bad matrix).
 */

import { promises as fs } from 'node:fs';
import type { ProgramStatic } from '../analysis/verdict.js';
import { UsageError } from '../errors.js';
import type { PlanKernel } from '../loader/loader.js';
import type { Output } from './output.js';

export interface CheckCommandOptions {
  objects: string[];
  matrix: string;
  /** Kernels of the matrix to check (default: all). */
  kernels: string[];
  json: boolean;
  /** Kernel cache root (default $COREMATRIX_CACHE or ./kernels). */
  cache?: string;
}

export interface CheckIo {
  out: Output;
  stderr: (text: string) => void;
}

export interface CheckResult {
  kernels: { name: string; release: string }[];
  programs: ProgramStatic[];
  /** Objects that are not BPF objects corematrix can read. */
  unreadable: { object: string; error: string }[];
  ms: number;
}

export async function runCheck(o: CheckCommandOptions): Promise<CheckResult> {
  const t0 = performance.now();
  const [{ loadMatrix }, { findKernel, matrixKernelSources }] = await Promise.all([
    import('../matrix/load.js'),
    import('../matrix/kernels.js'),
  ]);
  const matrix = loadMatrix(o.matrix, { checkCases: false });
  const sources = matrixKernelSources(matrix, o.cache === undefined ? {} : { cache: o.cache });
  for (const name of o.kernels) findKernel(sources, name, o.matrix);
  const chosen = o.kernels.length === 0 ? sources : sources.filter((s) => o.kernels.includes(s.name));

  // Objects and kernels are read side by side; each kernel's BTF once.
  const [{ parseBpfObject }, verdictModule, { rawKconfig }] = await Promise.all([
    import('../object/object.js'),
    import('../analysis/verdict.js'),
    import('../loader/kconfig.js'),
  ]);
  const objectsP = Promise.all(
    o.objects.map(async (file) => {
      const bytes = new Uint8Array(await fs.readFile(file));
      try {
        return { file, obj: parseBpfObject(bytes, { path: file }) };
      } catch (e) {
        return { file, error: e instanceof Error ? e.message : String(e) };
      }
    }),
  );
  const kernelsP = Promise.all(
    chosen.map(async (s) => {
      const r = await s.open({ fetch: false });
      if (r.state === 'not fetched' || r.state === 'corrupt') {
        throw new UsageError(
          `kernel ${s.name} (${s.describe()}) is ${r.state === 'corrupt' ? 'corrupt in the cache' : 'not fetched'}: run \`corematrix kernels fetch ${s.name}\` first`,
          { file: o.matrix },
        );
      }
      if (r.btf === undefined || r.config === undefined || r.release === undefined) {
        throw new UsageError(`kernel ${s.name}: ${r.detail ?? 'its BTF, config or release is unknown'}`, {
          file: o.matrix,
        });
      }
      const kernel: PlanKernel = {
        btf: r.btf,
        config: r.config,
        release: r.release,
        ...(r.config.version === undefined ? {} : { version: r.config.version }),
      };
      return { name: s.name, kernel, kconfig: rawKconfig(r.config) };
    }),
  );
  const [objects, kernels] = await Promise.all([objectsP, kernelsP]);

  const programs: ProgramStatic[] = [];
  const unreadable: CheckResult['unreadable'] = [];
  for (const entry of objects) {
    if (entry.obj === undefined) {
      unreadable.push({ object: entry.file, error: entry.error ?? '' });
      continue;
    }
    for (const k of kernels) {
      programs.push(
        ...verdictModule.staticVerdicts({
          name: entry.file,
          obj: entry.obj,
          kernelName: k.name,
          kernel: k.kernel,
          kconfig: k.kconfig,
        }),
      );
    }
  }
  return {
    kernels: kernels.map((k) => ({ name: k.name, release: k.kernel.release })),
    programs,
    unreadable,
    ms: Math.round(performance.now() - t0),
  };
}

export async function checkCommand(o: CheckCommandOptions, io: CheckIo): Promise<number> {
  const r = await runCheck(o);
  io.out.write(o.json ? `${JSON.stringify(checkJson(r), null, 2)}\n` : formatCheck(r));
  for (const u of r.unreadable)
    io.stderr(`corematrix: ${u.object}: not a BPF object corematrix can read: ${u.error}\n`);
  return r.unreadable.length > 0 ? 1 : 0;
}

export function checkJson(r: CheckResult): unknown {
  return {
    kernels: r.kernels,
    unreadable: r.unreadable,
    programs: r.programs.map((p) => ({
      object: p.object,
      program: p.program,
      section: p.section,
      kernel: p.kernel,
      verdict: p.verdict,
      reasons: p.reasons,
      unknown: p.unknown,
      poisoned: p.poisoned,
      features: p.features.filter((f) => f.status !== 'ok'),
      ...(p.relocations === undefined
        ? {}
        : {
            relocations: p.relocations
              .filter((c) => c.status !== 'resolved')
              .map((c) => ({ access: c.record.access, kind: c.record.kind, status: c.status, fix: c.fix })),
          }),
    })),
  };
}

export function formatCheck(r: CheckResult): string {
  const lines: string[] = [];
  lines.push(`static tier: ${r.kernels.map((k) => `${k.name} (${k.release})`).join(', ')}`);
  const width = Math.max(0, ...r.kernels.map((k) => k.name.length));
  let object: string | undefined;
  // Grouped by object, then program, then kernel.
  const byProgram = new Map<string, ProgramStatic[]>();
  for (const p of r.programs) {
    const key = `${p.object}\0${p.program}`;
    byProgram.set(key, [...(byProgram.get(key) ?? []), p]);
  }
  for (const list of byProgram.values()) {
    const first = list[0]!;
    if (first.object !== object) {
      object = first.object;
      lines.push('', object);
    }
    lines.push(`  ${first.program} (${first.section})`);
    for (const p of list) {
      const head = `    ${p.kernel.padEnd(width)}  ${p.verdict}`;
      if (p.verdict === 'loads') {
        const poison = p.poisoned > 0 ? ` (${p.poisoned} poisoned CO-RE relocation(s), all guarded)` : '';
        lines.push(head + poison);
      } else {
        lines.push(`${head}: ${p.reasons[0]?.message ?? ''}`);
        for (const reason of p.reasons.slice(1))
          lines.push(`    ${' '.repeat(width)}    also: ${reason.message}`);
      }
    }
  }
  const loads = r.programs.filter((p) => p.verdict === 'loads').length;
  const unknown = new Map<string, number>();
  for (const p of r.programs) {
    for (const u of p.unknown) {
      const key = u
        .replace(/ [^ ]+ not in BTF.*$/, ' not in BTF')
        .replace(/^typeless ksym .*/, 'typeless ksyms');
      unknown.set(key, (unknown.get(key) ?? 0) + 1);
    }
  }
  lines.push(
    '',
    `${r.programs.length} program × kernel cells: ${loads} load, ${r.programs.length - loads} rejected (${r.ms} ms)`,
    'unknown statically:',
    ...[...unknown].map(([u, n]) => `  ${u} (${n})`),
  );
  return `${lines.join('\n')}\n`;
}
