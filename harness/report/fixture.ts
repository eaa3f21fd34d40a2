/**
 * Test support: the static tier's report for the case suite × the four default Debian kernels
 * (staticVerdicts, no boot), built once per test file; and the same for any objects.
 */

import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { staticVerdicts } from '../analysis/verdict.js';
import { Btf } from '../btf/btf.js';
import { rawKconfig } from '../loader/kconfig.js';
import type { ResolvedKernel } from '../matrix/kernels.js';
import { parseBpfObject } from '../object/object.js';
import { defaultDebianKernels } from '../test-support/kernels.js';
import type { CellResult } from '../vm/cell.js';
import { type BuildInput, buildReport, type CellInput, reportKernel } from './build.js';
import type { Report } from './schema.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** build/cases/*.bpf.o (little-endian objects), relative to the repository. */
export function caseObjects(): string[] {
  const dir = path.join(repo, 'build', 'cases');
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.bpf.o'))
    .sort()
    .map((f) => path.join('build', 'cases', f));
}

let cached: Promise<BuildInput> | undefined;

/** The report of the case suite × the default Debian kernels, static tier. */
export async function staticSuiteReport(): Promise<Report> {
  return buildReport(await staticSuiteInput());
}

/** What the static tier produced for it, before buildReport. */
export function staticSuiteInput(): Promise<BuildInput> {
  cached ??= staticReportInput(
    caseObjects().map((file) => ({ file, bytes: readFileSync(path.join(repo, file)) })),
  );
  return cached;
}

/**
 * The static tier on `objects` × the default Debian kernels, before buildReport; each object is
 * named by its `file` in the report.
 */
export async function staticReportInput(
  objectFiles: readonly { file: string; bytes: Uint8Array }[],
): Promise<BuildInput> {
  const kernels = await defaultDebianKernels();
  const objects = objectFiles.map(({ file, bytes }) => ({
    file,
    bytes,
    obj: parseBpfObject(new Uint8Array(bytes), { path: file }),
    sha256: createHash('sha256').update(bytes).digest('hex'),
  }));
  const cells: CellInput[] = [];
  const reportKernels: BuildInput['kernels'] = [];
  const t0 = performance.now();
  for (const k of kernels) {
    const btfBytes = readFileSync(k.btf!);
    const config = readFileSync(k.config, 'latin1');
    const kernel = { btf: Btf.parse(new Uint8Array(btfBytes)), config, release: k.release };
    const kconfig = rawKconfig(config);
    reportKernels.push({
      name: k.name,
      source: `Debian ${k.suite} cloud-amd64`,
      release: k.release,
      arch: 'x86_64',
      btfSha256: createHash('sha256').update(btfBytes).digest('hex'),
    });
    for (const o of objects) {
      const ts = performance.now();
      const verdicts = staticVerdicts({ name: o.file, obj: o.obj, kernelName: k.name, kernel, kconfig });
      cells.push({
        kernel: k.name,
        object: o.file,
        static: verdicts,
        staticMs: Math.round(performance.now() - ts),
      });
    }
  }
  return {
    corematrixVersion: '0.1.0',
    tiers: ['static'],
    durationMs: Math.round(performance.now() - t0),
    kernels: reportKernels,
    objects: objects.map((o) => ({ name: o.file, path: o.file, sha256: o.sha256 })),
    cells,
  } satisfies BuildInput;
}

/**
 * Both tiers on one opened kernel: the case suite's static verdicts on it and a VM cell of it
 * (loadOnKernel of the same objects), through buildReport.
 */
export function bothTiersReport(
  kernelName: string,
  k: ResolvedKernel,
  cell: CellResult,
  options: { durationMs?: number; files?: readonly string[] } = {},
): Report {
  const kernel = { btf: k.btf!, config: k.config!, release: k.release! };
  const kconfig = rawKconfig(k.config!);
  const objects = (options.files ?? caseObjects()).map((file) => {
    const bytes = readFileSync(path.join(repo, file));
    return {
      file,
      obj: parseBpfObject(new Uint8Array(bytes), { path: file }),
      sha256: createHash('sha256').update(bytes).digest('hex'),
    };
  });
  return buildReport({
    corematrixVersion: 'test',
    tiers: ['static', 'vm'],
    durationMs: options.durationMs ?? 0,
    kernels: [
      reportKernel(
        k,
        k.btfFile === undefined
          ? {}
          : { btfSha256: createHash('sha256').update(readFileSync(k.btfFile)).digest('hex') },
      ),
    ],
    objects: objects.map((o) => ({ name: o.file, path: o.file, sha256: o.sha256 })),
    cells: objects.map((o) => ({
      kernel: kernelName,
      object: o.file,
      static: staticVerdicts({ name: o.file, obj: o.obj, kernelName, kernel, kconfig }),
      vm: cell,
    })),
  });
}
