/**
 * `corematrix kernels list|fetch|info`: the kernels a matrix declares, their sources, and what is
 * cached of them. `list` never touches the network; `fetch` does what `list` says is missing;
 * `info` tells one kernel's release, BTF and the config options that matter to BPF.
 */

import { summarizeBtf } from '../btf/summary.js';
import { BPF_CONFIG_HIGHLIGHTS, formatConfigValue, type KernelConfig } from '../kernels/config.js';
import {
  findKernel,
  type KernelSource,
  matrixKernelSources,
  type ResolvedKernel,
} from '../matrix/kernels.js';
import { loadMatrix } from '../matrix/load.js';
import type { Output } from './output.js';

export interface KernelsOptions {
  matrix: string;
  /** Cache root; default $COREMATRIX_CACHE or ./kernels. */
  cache?: string;
}

export interface KernelsIo {
  out: Output;
  stderr: (text: string) => void;
  /** Redraw progress in place (a terminal) or print plain lines (a pipe, a log, CI). */
  tty: boolean;
}

/** Live progress only on a terminal, and never in CI (whose logs keep every byte). */
export function progressIsLive(isTty: boolean | undefined, env = process.env): boolean {
  return isTty === true && (env.CI === undefined || env.CI === '' || env.CI === 'false');
}

/** The matrix's kernel sources; only those named, when names are given (unknown name → UsageError). */
function selectKernels(options: KernelsOptions, names: string[]): KernelSource[] {
  // The kernels commands need no built cases: their globs are checked by the commands that run them.
  const matrix = loadMatrix(options.matrix, { checkCases: false });
  const sources = matrixKernelSources(matrix, options.cache === undefined ? {} : { cache: options.cache });
  if (names.length === 0) return sources;
  return names.map((name) => findKernel(sources, name, options.matrix));
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows
    .map((r) =>
      r
        .map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!)))
        .join('  ')
        .trimEnd(),
    )
    .map((line) => `${line}\n`)
    .join('');
}

function resolvedText(k: ResolvedKernel): string {
  if (k.package !== undefined) return `${k.package} ${k.version ?? ''}`.trim();
  return '-';
}

/** `corematrix kernels list`: one row per kernel, offline. */
export async function kernelsList(options: KernelsOptions, io: KernelsIo): Promise<void> {
  const sources = selectKernels(options, []);
  const kernels = await Promise.all(sources.map((s) => s.open({ fetch: false })));
  const rows = [['NAME', 'SOURCE', 'PACKAGE', 'RELEASE', 'STATE', 'BTF TYPES']];
  for (const k of kernels) {
    rows.push([
      k.name,
      k.source,
      resolvedText(k),
      k.release ?? '-',
      k.state,
      k.btf === undefined ? '-' : String(k.btf.typeCount - k.btf.firstId),
    ]);
  }
  io.out.write(table(rows));
  const missing = kernels.filter((k) => k.state === 'not fetched' || k.state === 'corrupt');
  for (const k of missing) {
    io.out.write(`${k.name}: ${k.state}${k.detail === undefined ? '' : ` (${k.detail})`}\n`);
  }
  if (missing.length > 0)
    io.out.write(`fetch with: corematrix kernels fetch ${missing.map((k) => k.name).join(' ')}\n`);
}

/** Progress of several kernels at once: a board redrawn in place, or plain lines. */
class Progress {
  private readonly status = new Map<string, string>();
  private drawn = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly start = Date.now();

  constructor(
    names: string[],
    private readonly io: KernelsIo,
  ) {
    for (const n of names) this.status.set(n, 'waiting');
    if (io.tty) {
      this.draw();
      this.timer = setInterval(() => this.draw(), 250);
      this.timer.unref();
    }
  }

  /** A kernel's new stage; `quiet` ones only show on the live board, not as plain lines. */
  update(name: string, text: string, options: { quiet?: boolean } = {}): void {
    this.status.set(name, text);
    if (this.io.tty) this.draw();
    else if (options.quiet !== true) this.io.stderr(`${name}: ${text}\n`);
  }

  private draw(): void {
    const width = Math.max(...[...this.status.keys()].map((n) => n.length));
    const seconds = ((Date.now() - this.start) / 1000).toFixed(1);
    let text = this.drawn > 0 ? `\x1b[${this.drawn}A` : '';
    for (const [name, status] of this.status) text += `\x1b[2K${name.padEnd(width)}  ${status}\n`;
    text += `\x1b[2K${seconds} s\n`;
    this.drawn = this.status.size + 1;
    this.io.stderr(text);
  }

  finish(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    if (this.io.tty) this.draw();
  }
}

export interface FetchCommandOptions extends KernelsOptions {
  names: string[];
  refresh: boolean;
}

/** `corematrix kernels fetch`: fetches and extracts every (or each named) Debian kernel. */
export async function kernelsFetch(options: FetchCommandOptions, io: KernelsIo): Promise<void> {
  const sources = selectKernels(options, options.names);
  const progress = new Progress(
    sources.map((s) => s.name),
    io,
  );
  let results: ResolvedKernel[];
  try {
    results = await Promise.all(
      sources.map(async (s) => {
        progress.update(s.name, s.decl.kind === 'debian' ? 'resolving' : 'checking files', { quiet: true });
        const k = await s.open({
          fetch: true,
          refresh: options.refresh,
          read: false,
          log: (line) => progress.update(s.name, line),
        });
        progress.update(s.name, k.kind !== 'debian' ? 'nothing to fetch' : `${k.state}: ${k.release}`);
        return k;
      }),
    );
  } finally {
    progress.finish();
  }
  for (const k of results) {
    if (k.kind === 'debian') {
      io.out.write(`${k.name}: ${k.release} (${resolvedText(k)}) in ${k.entry}\n`);
    } else {
      const release = k.release === undefined ? '' : `, release ${k.release}`;
      io.out.write(`${k.name}: ${k.source}${release}: nothing to fetch\n`);
    }
  }
}

/** `corematrix kernels info NAME`: fetches the kernel if needed, then describes it. */
export async function kernelsInfo(options: KernelsOptions & { name: string }, io: KernelsIo): Promise<void> {
  const [source] = selectKernels(options, [options.name]);
  const k = await source!.open({ fetch: true, log: (line) => io.stderr(`${source!.name}: ${line}\n`) });
  io.out.write(formatKernelInfo(k));
}

const RELEASE_FROM: Record<string, string> = {
  vmlinuz: 'the vmlinuz',
  vmlinux: "the vmlinux's banner",
  btf: "the BTF's container",
  config: "the config's header (the version only)",
  uname: 'uname -r',
};

export function formatKernelInfo(k: ResolvedKernel): string {
  const lines: [string, string][] = [
    ['name', k.name],
    ['source', k.source],
  ];
  if (k.package !== undefined) lines.push(['package', resolvedText(k)]);
  if (k.release !== undefined) {
    const from = k.releaseFrom === undefined ? '' : ` (from ${RELEASE_FROM[k.releaseFrom]})`;
    lines.push(['release', `${k.release}${from}`]);
  }
  if (k.entry !== undefined) lines.push(['cache', k.entry]);
  lines.push(['tiers', k.tiers.join(', ')]);
  if (k.vmlinuz !== undefined) lines.push(['vmlinuz', k.vmlinuz]);
  if (k.btf !== undefined && k.btfFile !== undefined) {
    const s = summarizeBtf(k.btf);
    const container = k.btfSource?.container ?? 'raw';
    lines.push(['btf', `${k.btfFile} (${container})`]);
    lines.push(['btf size', `${s.bytes} bytes (types ${s.typeBytes}, strings ${s.stringBytes})`]);
    const kinds = Object.entries(s.kinds)
      .sort(([a, x], [b, y]) => y - x || a.localeCompare(b))
      .map(([kind, n]) => `${kind} ${n}`)
      .join(', ');
    lines.push(['btf types', `${s.ownTypes} (${kinds})`]);
  }
  if (k.configFile !== undefined && k.config !== undefined) {
    const header = k.config.version === undefined ? '' : ` (Linux/${k.config.arch} ${k.config.version})`;
    lines.push(['config', `${k.configFile}${header}`]);
  } else lines.push(['config', 'none (no config file for this kernel)']);
  const width = Math.max(...lines.map(([label]) => label.length)) + 2;
  let text = lines.map(([label, value]) => `${`${label}:`.padEnd(width)}${value}\n`).join('');
  if (k.config !== undefined) text += formatHighlights(k.config);
  return text;
}

/** The BPF options as the config file writes them, each with why it matters. */
export function formatHighlights(config: KernelConfig): string {
  const rows = BPF_CONFIG_HIGHLIGHTS.map(({ name, why }) => {
    const value = config.options.get(name);
    const text =
      value === undefined
        ? `${name} (not in the config)`
        : value.type === 'tristate' && value.value === 'n'
          ? `# ${name} is not set`
          : `${name}=${formatConfigValue(value)}`;
    return [text, why] as const;
  });
  const width = Math.max(...rows.map(([t]) => t.length)) + 2;
  return `bpf config:\n${rows.map(([t, why]) => `  ${t.padEnd(width)}${why}\n`).join('')}`;
}
