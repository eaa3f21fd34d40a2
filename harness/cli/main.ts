import { writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { isCorematrixError } from '../errors.js';
import { readInput, withFileSync } from './input.js';
import type { RelocateOptions } from './objects.js';
import { fdOutput, type Output, OutputClosed } from './output.js';

// Only the error types load up front: every command imports what it needs when it runs, so `btf
// dump` of a raw BTF never loads the ELF reader or a decompressor (startup is a large share of a
// dump's wall time).

/**
 * Exit codes: 0 success; 1 bad input (a file that is corrupt or of an unsupported kind); 2 bad
 * usage (an unknown command or option, a missing argument, a file that cannot be read: a
 * UsageError); 70 (EX_SOFTWARE) a bug in corematrix, reported with its stack.
 */
export const EXIT = { ok: 0, badInput: 1, usage: 2, internal: 70 } as const;

export type Invocation =
  | { command: 'btf dump'; file: string; base?: string; format: 'raw' | 'c' }
  | { command: 'btf info'; file: string; base?: string; json: boolean }
  | { command: 'obj dump'; file: string }
  | { command: 'relocate'; options: RelocateOptions }
  | { command: 'kernels list'; matrix: string }
  | { command: 'kernels fetch'; matrix: string; names: string[]; refresh: boolean }
  | { command: 'kernels info'; matrix: string; name: string }
  | {
      command: 'load';
      objects: string[];
      kernel: string;
      matrix: string;
      json: boolean;
      strictInfra: boolean;
    }
  | { command: 'check'; objects: string[]; matrix: string; kernels: string[]; json: boolean }
  | { command: 'run'; options: import('./run.js').RunCommandOptions }
  | { command: 'report render'; report: string; out: string; formats: string[] }
  | { command: 'diff'; old: string; now: string; json: boolean; markdown: boolean }
  | { command: 'merge'; reports: string[]; out: string }
  | { command: 'plan'; matrix: string; shards: number; format: 'github' | 'text' }
  | { command: 'image build'; options: import('./image.js').ImageBuildOptions };

export interface MainIo {
  stdout: Output;
  stderr: (line: string) => void;
}

/** Runs the CLI with `argv` (the arguments after the program name) and returns the exit code. */
export async function main(argv: string[], io: MainIo = processIo()): Promise<number> {
  const invocation = await parseArguments(argv, io);
  if (typeof invocation === 'number') return invocation;
  if (invocation === undefined) return EXIT.ok;

  try {
    const code = await run(invocation, io);
    io.stdout.flush();
    return code;
  } catch (e) {
    // The reader went away (`| head`): what it wanted it got, and that is not an error.
    if (e instanceof OutputClosed) return EXIT.ok;
    return reportError(e, invocation, io);
  }
}

function processIo(): MainIo {
  return {
    stdout: fdOutput(1),
    stderr: (line) => {
      try {
        writeSync(2, line);
      } catch {
        // Nowhere left to report to.
      }
    },
  };
}

/**
 * The command line parsed by commander: the invocation, undefined when there is nothing to run, or
 * the exit code when parsing ended it (an error, --help, --version).
 */
export async function parseArguments(argv: string[], io: MainIo): Promise<Invocation | undefined | number> {
  const commander = await import('commander');
  const { CommanderError } = commander;
  try {
    return parseWithCommander(argv, io, commander);
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version end parsing the same way as errors do, with exit code 0.
      try {
        io.stdout.flush();
      } catch (closed) {
        if (!(closed instanceof OutputClosed)) throw closed;
      }
      return e.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    throw e;
  }
}

function parseWithCommander(
  argv: string[],
  io: MainIo,
  { Command, Option, InvalidArgumentError }: typeof import('commander'),
): Invocation | undefined {
  const positiveInt = (value: string): number => {
    const n = Number(value);
    if (!/^[1-9]\d*$/.test(value.trim()) || !Number.isSafeInteger(n)) {
      throw new InvalidArgumentError(`expected a positive integer, got ${JSON.stringify(value)}`);
    }
    return n;
  };
  let invocation: Invocation | undefined;
  const program = new Command('corematrix')
    .description('Tells BPF developers on which Linux kernels their CO-RE programs work.')
    .version(process.env.npm_package_version ?? '0.1.0')
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr(text),
      // commander says "error: unknown option '--x'\n(Did you mean --y?)": make it one line.
      outputError: (text, write) =>
        write(
          `corematrix: ${text
            .replace(/^error: /, '')
            .trim()
            .replace(/\s*\n\s*/g, ' ')}\n`,
        ),
    })
    .showSuggestionAfterError(true)
    .exitOverride();

  const baseOption = () =>
    new Option('--base <BASE>', 'the BTF that FILE continues (split BTF, e.g. vmlinux for a module)');
  const matrixOption = () =>
    new Option('--matrix <FILE>', 'the matrix file declaring the kernels').default('matrix.yaml');
  // A group command (btf, kernels, …) without its subcommand prints its help and fails; commander
  // then throws with exit code 1, which parseArguments' caller turns into a usage error.
  const groups: import('commander').Command[] = [program];
  const commands: Record<string, () => void> = {
    btf: () => {
      const btf = program
        .command('btf')
        .description('Read BTF from raw BTF, an ELF file (vmlinux, .ko, .o) or a kernel image (vmlinuz)');

      btf
        .command('dump')
        .description("Print every type, in bpftool's raw format or as a C header (vmlinux.h)")
        .argument('<FILE>', 'the file holding the BTF')
        .addOption(baseOption())
        .addOption(
          new Option('--format <FORMAT>', 'raw (as bpftool prints it) or c')
            .choices(['raw', 'c'])
            .default('raw'),
        )
        .action((file: string, options: { base?: string; format: 'raw' | 'c' }) => {
          invocation = { command: 'btf dump', file, format: options.format, ...baseOf(options) };
        });

      btf
        .command('info')
        .description('Summarize a BTF: kernel release when known, type count, size, types per kind')
        .argument('<FILE>', 'the file holding the BTF')
        .addOption(baseOption())
        .option('--json', 'print the summary as JSON', false)
        .action((file: string, options: { base?: string; json: boolean }) => {
          invocation = { command: 'btf info', file, json: options.json, ...baseOf(options) };
        });
      groups.push(btf);
    },
    obj: () => {
      const obj = program.command('obj').description('Read BPF objects (clang -target bpf output)');
      obj
        .command('dump')
        .description('Print programs, maps, externs and every CO-RE relocation as libbpf sees them')
        .argument('<OBJ>', 'the BPF object')
        .action((file: string) => {
          invocation = { command: 'obj dump', file };
        });
      groups.push(obj);
    },
    relocate: () => {
      program
        .command('relocate')
        .description("Apply every CO-RE relocation of the objects against a kernel's BTF, as libbpf would")
        .argument('<OBJ...>', 'BPF objects')
        .requiredOption('--btf <FILE>', "the kernel's BTF: raw BTF, a vmlinux ELF or a vmlinuz")
        .option('--base <FILE>', 'the BTF that --btf continues, when it is split BTF')
        .option('--module <FILE>', 'a module BTF (split on --btf); repeatable', collect, [])
        .option('--json', 'one JSON object per line per relocation', false)
        .option('-o, --output <OUT>', 'write the relocated object (one OBJ only)')
        .action(
          (
            objects: string[],
            options: { btf: string; base?: string; module: string[]; json: boolean; output?: string },
          ) => {
            invocation = {
              command: 'relocate',
              options: {
                objects,
                btf: options.btf,
                modules: options.module,
                json: options.json,
                ...(options.base === undefined ? {} : { base: options.base }),
                ...(options.output === undefined ? {} : { output: options.output }),
              },
            };
          },
        );
    },
    kernels: () => {
      const kernels = program
        .command('kernels')
        .description(
          'The kernels of a matrix (matrix.yaml): Debian packages, local files, the running kernel',
        );
      kernels
        .command('list')
        .description('Each kernel: source, resolved package and release, cached or not, BTF types (offline)')
        .addOption(matrixOption())
        .action((options: { matrix: string }) => {
          invocation = { command: 'kernels list', matrix: options.matrix };
        });
      kernels
        .command('fetch')
        .description('Fetch and extract the kernels (all, or those named) into the cache')
        .argument('[NAME...]', 'kernels of the matrix to fetch (default: all)')
        .addOption(matrixOption())
        .option('--refresh', 'resolve "newest" again from the archive, even if a kernel is cached', false)
        .action((names: string[], options: { matrix: string; refresh: boolean }) => {
          invocation = { command: 'kernels fetch', matrix: options.matrix, names, refresh: options.refresh };
        });
      kernels
        .command('info')
        .description("One kernel's release, BTF size and type counts, and its BPF config options")
        .argument('<NAME>', 'a kernel of the matrix')
        .addOption(matrixOption())
        .action((name: string, options: { matrix: string }) => {
          invocation = { command: 'kernels info', matrix: options.matrix, name };
        });
      groups.push(kernels);
    },
    load: () => {
      program
        .command('load')
        .description(
          'Boot a matrix kernel in a VM and load every program of the objects, each on its own: verdict, errno, verifier log, cause',
        )
        .argument('<OBJ...>', 'BPF objects')
        .requiredOption(
          '--kernel <NAME>',
          'the matrix kernel to boot (it needs an image: Debian or local vmlinuz)',
        )
        .addOption(matrixOption())
        .option('--json', 'print the results as JSON', false)
        .option('--strict-infra', 'exit 1 when the VM or the agent failed (infra_error)', false)
        .action(
          (
            objects: string[],
            options: { kernel: string; matrix: string; json: boolean; strictInfra: boolean },
          ) => {
            invocation = { command: 'load', objects, ...options };
          },
        );
    },
    check: () => {
      program
        .command('check')
        .description(
          'The static tier alone: per object × matrix kernel × program, the predicted verdict (loads / rejected) and why, from BTF and config (no VM)',
        )
        .argument('<OBJ...>', 'BPF objects')
        .addOption(matrixOption())
        .option('--kernel <NAME...>', 'kernels of the matrix to check (default: all)')
        .option('--json', 'print the results as JSON', false)
        .action((objects: string[], options: { matrix: string; kernel?: string[]; json: boolean }) => {
          invocation = {
            command: 'check',
            objects,
            matrix: options.matrix,
            kernels: options.kernel ?? [],
            json: options.json,
          };
        });
    },
    run: () => {
      program
        .command('run')
        .description(
          'Run the matrix: every kernel × object cell on the static tier and (kernels with an image) in a VM; writes report.json, index.html, junit.xml, summary.md',
        )
        .addOption(matrixOption())
        .addOption(
          new Option('--tier <TIER>', "static, vm or all (default: the matrix's tiers)").choices([
            'static',
            'vm',
            'all',
          ]),
        )
        .option('--kernel <NAME...>', 'only these kernels of the matrix')
        .option(
          '-t, --case <PATTERN...>',
          'only objects whose path contains PATTERN (or matches it as a glob)',
        )
        .option('--out <DIR>', "where the reports go (default: the matrix's reports, ./reports)")
        .option('--baseline <REPORT>', 'an earlier report.json: regressions against it fail the run')
        .option(
          '--shard <I/N>',
          'run only shard I of N (deterministic); merge the shards with `corematrix merge`',
        )
        .option('--strict-infra', 'exit 1 when infra errors (VM faults) are all that went wrong', false)
        .option(
          '--concurrency <N>',
          "VMs at once (default: the matrix's concurrency, else the CPU count)",
          positiveInt,
        )
        .addOption(new Option('--executor <KIND>', 'where VMs run').choices(['local', 'container']))
        .action((options: import('./run.js').RunCommandFlags) => {
          invocation = { command: 'run', options: { ...options, matrix: options.matrix } };
        });
    },
    report: () => {
      const report = program.command('report').description('Reports written by `corematrix run`');
      report
        .command('render')
        .description('Render index.html, junit.xml and summary.md from a report.json alone')
        .argument('<REPORT>', 'a report.json')
        .option('--out <DIR>', "where the rendered files go (default: the report's directory)")
        .addOption(
          new Option('--format <FORMAT...>', 'html, junit, markdown (default: all three)').choices([
            'html',
            'junit',
            'markdown',
          ]),
        )
        .action((file: string, options: { out?: string; format?: string[] }) => {
          invocation = {
            command: 'report render',
            report: file,
            out: options.out ?? dirname(file),
            formats: options.format ?? ['html', 'junit', 'markdown'],
          };
        });
      groups.push(report);
    },
    diff: () => {
      program
        .command('diff')
        .description(
          'Compare two report.json files: regressions (was ok, now failing), fixes, new needs-guard fields, kernels added/removed; exit 1 on regressions',
        )
        .argument('<OLD>', 'the baseline report.json')
        .argument('<NEW>', 'the new report.json')
        .option('--json', 'print the diff as JSON', false)
        .option('--markdown', 'print the diff as Markdown', false)
        .action((old: string, now: string, options: { json: boolean; markdown: boolean }) => {
          invocation = { command: 'diff', old, now, ...options };
        });
    },
    merge: () => {
      program
        .command('merge')
        .description('Combine the report.json of every shard into one report (and render it)')
        .argument('<REPORT...>', "the shards' report.json files")
        .requiredOption('-o, --out <DIR>', 'where the merged reports go')
        .action((reports: string[], options: { out: string }) => {
          invocation = { command: 'merge', reports, out: options.out };
        });
    },
    plan: () => {
      program
        .command('plan')
        .description(
          'Print the shards of a run for a CI system (GitHub Actions: a job matrix, one shard per job)',
        )
        .addOption(matrixOption())
        .requiredOption('--shards <N>', 'how many shards', positiveInt)
        .addOption(
          new Option('--format <FORMAT>', 'github or text').choices(['github', 'text']).default('text'),
        )
        .action((options: { matrix: string; shards: number; format: 'github' | 'text' }) => {
          invocation = { command: 'plan', ...options };
        });
    },
    image: () => {
      const image = program
        .command('image')
        .description("Container images, built locally from Debian's archive");
      image
        .command('build')
        .description('Build (or reuse) the images a matrix needs: the executor image and toolchain images')
        .argument('[IMAGE...]', 'images to build (default: all the matrix needs)')
        .addOption(matrixOption())
        .option('--rebuild', 'build even when an image with the same content tag exists', false)
        .action((names: string[], options: { matrix: string; rebuild: boolean }) => {
          invocation = { command: 'image build', options: { names, ...options } };
        });
      groups.push(image);
    },
  };
  // Only the command being run is set up: building all of them is most of the parse in a fresh
  // process (~2 ms). No command, an unknown one, help: all of them, for the list and suggestions.
  const named = argv[0] !== undefined && Object.hasOwn(commands, argv[0]) ? [argv[0]] : Object.keys(commands);
  for (const name of named) commands[name]!();

  for (const command of groups) command.exitOverride();
  program.parse(argv, { from: 'user' });
  return invocation;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function baseOf(options: { base?: string }): { base?: string } {
  return options.base === undefined ? {} : { base: options.base };
}

/** Runs a parsed command; resolves to its exit code. */
async function run(invocation: Invocation, io: MainIo): Promise<number> {
  const out = io.stdout;
  if (invocation.command === 'obj dump') {
    const { objDump } = await import('./objects.js');
    await objDump(invocation.file, out);
    return EXIT.ok;
  }
  if (invocation.command === 'relocate') {
    const { relocate } = await import('./objects.js');
    // Objects libbpf would refuse are a finding about the input: their records are printed, and
    // the exit code says so.
    const refused = await relocate(invocation.options, out, io.stderr);
    return refused > 0 ? EXIT.badInput : EXIT.ok;
  }
  if (invocation.command === 'load') {
    const { loadCommand } = await import('./load.js');
    const { isMatrixError } = await import('../matrix/load.js');
    try {
      return await loadCommand(invocation, { out, stderr: io.stderr });
    } catch (e) {
      if (!isMatrixError(e)) throw e;
      io.stderr(`corematrix: ${oneLine(e.describe())}\n`);
      return EXIT.usage;
    }
  }
  if (invocation.command === 'run') {
    const { runCommand } = await import('./run.js');
    return runCommand(invocation.options, { out, stderr: io.stderr });
  }
  if (
    invocation.command === 'report render' ||
    invocation.command === 'diff' ||
    invocation.command === 'merge' ||
    invocation.command === 'plan'
  ) {
    const reports = await import('./report.js');
    return reports.reportCommand(invocation, { out, stderr: io.stderr });
  }
  if (invocation.command === 'image build') {
    const { imageBuild } = await import('./image.js');
    return imageBuild(invocation.options, { out, stderr: io.stderr });
  }
  if (invocation.command === 'check') {
    const { checkCommand } = await import('./check.js');
    const { isMatrixError } = await import('../matrix/load.js');
    try {
      return await checkCommand(invocation, { out, stderr: io.stderr });
    } catch (e) {
      if (!isMatrixError(e)) throw e;
      io.stderr(`corematrix: ${oneLine(e.describe())}\n`);
      return EXIT.usage;
    }
  }
  if (
    invocation.command === 'kernels list' ||
    invocation.command === 'kernels fetch' ||
    invocation.command === 'kernels info'
  ) {
    return runKernels(invocation, io);
  }
  // The base is read on its own first, so an error in it names the base file.
  const base = invocation.base === undefined ? undefined : (await readInput(invocation.base)).btf;
  const { btf, source } = await readInput(invocation.file, base);
  const write = (chunk: string | Uint8Array): void => out.write(chunk);

  switch (invocation.command) {
    case 'btf dump':
      if (invocation.format === 'c') {
        const { writeCHeader } = await import('../btf/dump-c.js');
        withFileSync(invocation.file, () => writeCHeader(btf, write));
      } else {
        const { writeRawDump } = await import('../btf/dump-raw.js');
        withFileSync(invocation.file, () => writeRawDump(btf, write));
      }
      return EXIT.ok;
    case 'btf info': {
      const { summarizeBtf } = await import('../btf/summary.js');
      const { formatInfo, infoJson } = await import('./info.js');
      const summary = withFileSync(invocation.file, () => summarizeBtf(btf));
      const info = { file: invocation.file, source, summary };
      out.write(invocation.json ? `${JSON.stringify(infoJson(info), null, 2)}\n` : formatInfo(info));
      return EXIT.ok;
    }
  }
}

/** The kernels commands; a matrix file that is not valid is bad usage (exit 2). */
async function runKernels(
  invocation: Extract<Invocation, { command: 'kernels list' | 'kernels fetch' | 'kernels info' }>,
  io: MainIo,
): Promise<number> {
  const kernels = await import('./kernels.js');
  const { isMatrixError } = await import('../matrix/load.js');
  const kio = { out: io.stdout, stderr: io.stderr, tty: kernels.progressIsLive(process.stderr.isTTY) };
  try {
    if (invocation.command === 'kernels list') await kernels.kernelsList({ matrix: invocation.matrix }, kio);
    else if (invocation.command === 'kernels fetch') await kernels.kernelsFetch(invocation, kio);
    else await kernels.kernelsInfo({ matrix: invocation.matrix, name: invocation.name }, kio);
    return EXIT.ok;
  } catch (e) {
    if (!isMatrixError(e)) throw e;
    io.stderr(`corematrix: ${oneLine(e.describe())}\n`);
    return EXIT.usage;
  }
}

/** One line for expected failures; the stack only for what must be a bug. */
function reportError(e: unknown, invocation: Invocation, io: MainIo): number {
  if (isCorematrixError(e)) {
    io.stderr(`corematrix: ${oneLine(e.describe())}\n`);
    return e.code === 'usage' ? EXIT.usage : EXIT.badInput;
  }
  const system = systemErrorLine(e, invocation);
  if (system !== undefined) {
    io.stderr(`corematrix: ${system}\n`);
    return EXIT.badInput;
  }
  io.stderr(`corematrix: internal error (a bug in corematrix; please report it with this output)\n`);
  io.stderr(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  return EXIT.internal;
}

const SYSTEM_ERRORS: Record<string, string> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EISDIR: 'is a directory, not a file',
  ENOTDIR: 'a component of the path is not a directory',
  ELOOP: 'too many symbolic links',
  EIO: 'input/output error while reading',
  ENAMETOOLONG: 'file name too long',
};

/** Failures of the operating system to open or read an input file (missing, unreadable, …). */
function systemErrorLine(e: unknown, invocation: Invocation): string | undefined {
  const error = e as NodeJS.ErrnoException;
  if (!(e instanceof Error) || typeof error.code !== 'string' || typeof error.syscall !== 'string')
    return undefined;
  // Only input files are opened; an error about any other path is not the user's input.
  const inputs = inputsOf(invocation);
  const file = error.path ?? (inputs.length === 1 ? inputs[0] : undefined);
  if (file === undefined || !inputs.includes(file)) return undefined;
  return `${file}: ${SYSTEM_ERRORS[error.code] ?? `${error.syscall} failed (${error.code})`}`;
}

function inputsOf(invocation: Invocation): string[] {
  switch (invocation.command) {
    case 'relocate': {
      const o = invocation.options;
      return [...o.objects, o.btf, ...(o.base === undefined ? [] : [o.base]), ...o.modules];
    }
    case 'obj dump':
      return [invocation.file];
    case 'load':
    case 'check':
      return [...invocation.objects, invocation.matrix];
    case 'kernels list':
    case 'kernels fetch':
    case 'kernels info':
    case 'plan':
      return [invocation.matrix];
    case 'run':
      return [
        invocation.options.matrix,
        ...(invocation.options.baseline === undefined ? [] : [invocation.options.baseline]),
      ];
    case 'image build':
      return [invocation.options.matrix];
    case 'report render':
      return [invocation.report];
    case 'diff':
      return [invocation.old, invocation.now];
    case 'merge':
      return invocation.reports;
    default:
      return [invocation.file, invocation.base].filter((f): f is string => f !== undefined);
  }
}

function oneLine(text: string): string {
  return text.trim().replace(/\s*\n\s*/g, ' ');
}
