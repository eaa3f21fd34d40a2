// `npm run bench`: corematrix against the references it must keep up with, side by side in one
// run. It reports and never fails on speed: targets are printed as met or not.
//
//   a) parse + name lookups of the largest kernel BTF at hand, in-process: corematrix (cold first
//      call and warm median, scripts/bench-parse.mjs) vs sid's libbpf 1.7 (btf__parse +
//      btf__find_by_name_kind, scripts/oracle/btf-parse-bench.c). Target: warm within 5x.
//   b) whole process, hyperfine: `corematrix btf dump FILE` vs `bpftool btf dump file FILE`
//      (target: within 1.5x), `corematrix relocate <case suite>` vs `bpftool gen min_core_btf`
//      (target: 1.0x), and `--format c` vs bpftool's `format c` (reported only).
//   c) the VM tier (scripts/bench-vm.mjs): `corematrix load` of the case suite on the default
//      matrix's four Debian kernels vs libbpf 1.7 loading each program on its own in the same
//      kind of VM (target: at least 2x faster), with bare boots for reference.
//
// Needs `npm run build` first (the npm script does it) and, for (a), scripts/oracle/build.sh,
// which this runs: it downloads libbpf only the first time. Results: reports/bench/latest.json.
// `--skip-vm` leaves out (c), which boots VMs for minutes: `npm run bench -- --skip-vm`.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const buildDir = join(repo, 'build', 'bench');
const reportDir = join(repo, 'reports', 'bench');
const PARSE_ITERATIONS = 30;
/** Whole-process timings: rounds of hyperfine (see `hyperfine`), runs of each command per round. */
const HYPERFINE_ROUNDS = 6;
const RUNS_PER_ROUND = 8;
const PARSE_TARGET = 5;
const DUMP_TARGET = 1.5;
const RELOCATE_TARGET = 1.0;
/** corematrix's VM run of the matrix must take at most half of libbpf's one-by-one loading. */
const VM_TARGET = 0.5;
// Lookups every kernel BTF answers (and one it cannot), so both sides do the same work and the
// ids they find can be compared.
const LOOKUPS = [
  ['task_struct', 'struct'],
  ['sk_buff', 'struct'],
  ['list_head', 'struct'],
  ['pid_t', 'typedef'],
  ['int', 'int'],
  ['bpf_map_type', 'enum'],
  ['corematrix_no_such_type', 'struct'],
];

mkdirSync(buildDir, { recursive: true });
mkdirSync(reportDir, { recursive: true });

const file = largestKernelBtf();
if (file === undefined) {
  console.error('bench: no kernel BTF found (neither /sys/kernel/btf/vmlinux nor kernels/**/btf)');
  process.exit(1);
}
const size = statSync(file).size;
// Timings on a machine busy with other work mean little: say how busy it was.
const load = loadavg()[0];
console.log(
  `bench: ${file} (${(size / 1e6).toFixed(1)} MB); load average ${load.toFixed(2)} on ${cpus().length} CPUs`,
);

const rows = [];
const notes = [];
const results = { file, size, load, date: new Date().toISOString(), parse: {}, dump: {} };

// --- a) parse + name lookups, in-process -------------------------------------------------------
const args = [file, String(PARSE_ITERATIONS), ...LOOKUPS.flat()];
const ours = runJson('node', [join(repo, 'scripts', 'bench-parse.mjs'), ...args], 'corematrix parse');
const oracle = buildOracle();
const theirs = oracle === undefined ? undefined : runJson(oracle, args, 'libbpf parse');
results.parse = { corematrix: ours, libbpf: theirs };
if (ours !== undefined) {
  const libbpfCold = theirs?.ns[0];
  const libbpfWarm = theirs === undefined ? undefined : median(theirs.ns.slice(1));
  rows.push(row('parse + lookups, cold (first call)', ours.ns[0], libbpfCold, 'libbpf 1.7', undefined));
  rows.push(
    row('parse + lookups, warm (median)', median(ours.ns.slice(1)), libbpfWarm, 'libbpf 1.7', PARSE_TARGET),
  );
  if (theirs !== undefined) {
    const same =
      JSON.stringify(ours.found) === JSON.stringify(theirs.found) && ours.typeCount === theirs.typeCount;
    notes.push(
      same
        ? `lookups: same ids as libbpf (${ours.found.join(', ')}), ${ours.typeCount} types`
        : `lookups DIFFER from libbpf: corematrix ${JSON.stringify(ours.found)} (${ours.typeCount} types), libbpf ${JSON.stringify(theirs.found)} (${theirs.typeCount} types)`,
    );
  }
}

// --- b) whole process, hyperfine ----------------------------------------------------------------
const corematrix = `node ${join(repo, 'bin', 'corematrix.js')}`;
// NODE_EXTRA_CA_CERTS makes every node process parse a CA bundle before running any code (~45 ms
// on this machine's kind): a property of the environment, not of corematrix, which opens no TLS
// connection here. Timed without it; when it is set, also timed with it, for the record.
const caBundle = process.env.NODE_EXTRA_CA_CERTS;
const cleanEnv = { ...process.env };
delete cleanEnv.NODE_EXTRA_CA_CERTS;
// The case suite, for the relocation row: `bpftool gen min_core_btf` runs libbpf's CO-RE
// calculation for every relocation of the objects, the same work as `corematrix relocate`.
spawnSync('bash', [join(repo, 'scripts', 'build-cases.sh')], { stdio: ['ignore', 'ignore', 'inherit'] });
const caseObjects = readdirSync(join(repo, 'build', 'cases'))
  .filter((n) => n.endsWith('.bpf.o'))
  .map((n) => join(repo, 'build', 'cases', n))
  .join(' ');
const minBtf = join(buildDir, 'min.btf');
for (const [label, ourArgs, bpftoolArgs, target] of [
  ['btf dump (raw), whole process (median)', `btf dump ${file}`, `btf dump file ${file}`, DUMP_TARGET],
  [
    'relocate all case objects, whole process (median)',
    `relocate ${caseObjects} --btf ${file}`,
    `gen min_core_btf ${file} ${minBtf} ${caseObjects}`,
    RELOCATE_TARGET,
  ],
  [
    'btf dump --format c, whole process (median)',
    `btf dump ${file} --format c`,
    `btf dump file ${file} format c`,
    undefined,
  ],
]) {
  const times = hyperfine(label, `${corematrix} ${ourArgs}`, `bpftool ${bpftoolArgs}`, cleanEnv);
  results.dump[label] = times;
  if (times !== undefined) rows.push(row(label, times.ours, times.theirs, 'bpftool 7.1', target));
  if (caBundle !== undefined && target !== undefined) {
    const withBundle = hyperfine(
      `${label}, NODE_EXTRA_CA_CERTS set`,
      `${corematrix} ${ourArgs}`,
      `bpftool ${bpftoolArgs}`,
      process.env,
    );
    results.dump[`${label}, NODE_EXTRA_CA_CERTS set`] = withBundle;
    if (withBundle !== undefined) {
      rows.push(
        row(
          `  same, with NODE_EXTRA_CA_CERTS set`,
          withBundle.ours,
          withBundle.theirs,
          'bpftool 7.1',
          undefined,
        ),
      );
    }
  }
  // The relocation row's two commands print different things; only the dumps are comparable.
  if (label.startsWith('btf dump')) {
    notes.push(`${label}: ${compareOutputs(`${corematrix} ${ourArgs}`, `bpftool ${bpftoolArgs}`)}`);
  }
}

// --- c) the VM tier: scripts/bench-vm.mjs boots the default matrix's Debian kernels ------------------
const skipVm = process.argv.includes('--skip-vm');
if (!skipVm) console.error('bench: VM tier (four kernels, TCG) …');
const vm = skipVm
  ? undefined
  : spawnSync(process.execPath, [join(repo, 'scripts', 'bench-vm.mjs')], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
      env: cleanEnv,
      maxBuffer: 1 << 24,
    });
if (vm === undefined) {
  notes.push('VM tier: skipped (--skip-vm)');
} else if (vm.status === 0) {
  const v = JSON.parse(vm.stdout);
  results.vm = v;
  const ns = (ms) => ms * 1e6;
  const programs = v.libbpf.results.reduce((n, r) => n + (r.programs ?? 0), 0);
  rows.push(
    row(
      `VM load, ${v.objects} objects on 4 kernels (wall)`,
      ns(v.corematrix.wallMs),
      ns(v.libbpf.wallMs),
      'libbpf 1.7 in VM',
      VM_TARGET,
    ),
  );
  rows.push(row('  bare boots of the same kernels (wall)', ns(v.bare.wallMs), undefined, '-', undefined));
  notes.push(
    `VM tier: ${v.concurrency} VMs at once, TCG; ${programs} programs; corematrix ${(v.corematrix.wallMs / Math.max(1, programs)).toFixed(0)} ms per program, libbpf ${(v.libbpf.wallMs / Math.max(1, programs)).toFixed(0)} ms; per kernel (corematrix, libbpf): ${v.corematrix.results
      .map(
        (r, i) =>
          `${r.kernel} ${(r.ms / 1000).toFixed(2)} s, ${(v.libbpf.results[i].ms / 1000).toFixed(2)} s`,
      )
      .join('; ')}`,
  );
} else {
  notes.push(`VM tier: scripts/bench-vm.mjs failed (exit ${vm.status})`);
}

printTable(rows);
for (const note of notes) console.log(`  ${note}`);
results.rows = rows;
results.notes = notes;
const reportFile = join(reportDir, 'latest.json');
writeFileSync(reportFile, `${JSON.stringify(results, null, 2)}\n`);
console.log(`bench: results in ${relative(process.cwd(), reportFile)}`);

// --- helpers -------------------------------------------------------------------------------------

/** The biggest of /sys/kernel/btf/vmlinux and files under kernels/ named btf or *.btf, or in a btf/ folder. */
function largestKernelBtf() {
  const candidates = [];
  if (existsSync('/sys/kernel/btf/vmlinux')) candidates.push('/sys/kernel/btf/vmlinux');
  const walk = (dir, inBtfDir) => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path, inBtfDir || entry.name === 'btf');
      else if (entry.isFile() && (inBtfDir || entry.name === 'btf' || entry.name.endsWith('.btf')))
        candidates.push(path);
    }
  };
  walk(join(repo, 'kernels'), false);
  // /sys files report a size of 4096 or the real one depending on the kernel; read it to be sure.
  const sized = candidates.map((path) => ({ path, size: readFileSync(path).length }));
  sized.sort((a, b) => b.size - a.size);
  return sized[0]?.path;
}

function buildOracle() {
  const build = spawnSync('bash', [join(repo, 'scripts', 'oracle', 'build.sh')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const helper = join(repo, 'build', 'oracle', 'btf-parse-bench');
  if (build.status !== 0 || !existsSync(helper)) {
    notes.push(`libbpf oracle unavailable (scripts/oracle/build.sh failed): ${lastLine(build.stderr)}`);
    return undefined;
  }
  return helper;
}

function runJson(command, commandArgs, what) {
  const result = spawnSync(command, commandArgs, { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (result.status !== 0) {
    notes.push(`${what} failed (exit ${result.status}): ${lastLine(result.stderr)}`);
    return undefined;
  }
  return JSON.parse(result.stdout);
}

/**
 * Rounds of hyperfine, each timing both commands (the order alternating), for the runs of each
 * side pooled: on a shared machine the load drifts, and one long block per command would time the
 * two under different loads. Medians of the pooled runs: a few runs that land on a busy moment
 * do not drag them along as they would a mean.
 */
function hyperfine(label, oursCommand, theirsCommand, env) {
  console.log(`bench: timing ${label} …`);
  const ours = [];
  const theirs = [];
  for (let round = 0; round < HYPERFINE_ROUNDS; round++) {
    const json = join(buildDir, `hyperfine-${label.replace(/[^a-z0-9]+/gi, '-')}-${round}.json`);
    const commands = round % 2 === 0 ? [oursCommand, theirsCommand] : [theirsCommand, oursCommand];
    const result = spawnSync(
      'hyperfine',
      [
        '-N',
        '--warmup',
        '1',
        '--runs',
        String(RUNS_PER_ROUND),
        '--style',
        'none',
        '--export-json',
        json,
        ...commands,
      ],
      { encoding: 'utf8', env },
    );
    if (result.status !== 0) {
      notes.push(`${label}: hyperfine failed: ${lastLine(result.stderr)}`);
      return undefined;
    }
    const results = JSON.parse(readFileSync(json, 'utf8')).results;
    for (const r of results) (r.command === oursCommand ? ours : theirs).push(...r.times);
  }
  const stats = (times) => {
    const mean = times.reduce((a, b) => a + b, 0) / times.length;
    const stddev = Math.sqrt(times.reduce((a, t) => a + (t - mean) ** 2, 0) / (times.length - 1));
    return { median: median(times) * 1e9, mean: mean * 1e9, stddev: stddev * 1e9 };
  };
  const [o, t] = [stats(ours), stats(theirs)];
  return {
    ours: o.median,
    theirs: t.median,
    oursMean: o.mean,
    theirsMean: t.mean,
    oursStddev: o.stddev,
    theirsStddev: t.stddev,
    runs: ours.length,
  };
}

/** Whether two commands print the same bytes: a speed comparison of different work means little. */
function compareOutputs(oursCommand, theirsCommand) {
  const capture = (command) => {
    const [program, ...rest] = command.split(' ');
    try {
      return execFileSync(program, rest, { maxBuffer: 1 << 30, stdio: ['ignore', 'pipe', 'ignore'] });
    } catch {
      return undefined;
    }
  };
  const a = capture(oursCommand);
  const b = capture(theirsCommand);
  if (a === undefined || b === undefined) return 'output not compared (a command failed)';
  if (a.equals(b)) return `output identical to bpftool's (${a.length} bytes)`;
  const linesA = a.toString('utf8').split('\n');
  const linesB = b.toString('utf8').split('\n');
  let i = 0;
  while (i < linesA.length && linesA[i] === linesB[i]) i++;
  return `output differs from bpftool's (${a.length} vs ${b.length} bytes; first at line ${i + 1})`;
}

function row(measure, oursNs, theirsNs, reference, target) {
  const ratio = oursNs !== undefined && theirsNs !== undefined ? oursNs / theirsNs : undefined;
  const met = target === undefined || ratio === undefined ? '' : ratio <= target ? 'yes' : 'NO';
  return { measure, corematrix: oursNs, reference, referenceNs: theirsNs, ratio, target, met };
}

function printTable(table) {
  const ms = (ns) => (ns === undefined ? 'n/a' : `${(ns / 1e6).toFixed(1)} ms`);
  const cells = table.map((r) => [
    r.measure,
    ms(r.corematrix),
    `${ms(r.referenceNs)} (${r.reference})`,
    r.ratio === undefined ? 'n/a' : `${r.ratio.toFixed(2)}x`,
    r.target === undefined ? '-' : `<= ${r.target}x`,
    r.met || '-',
  ]);
  const header = ['measure', 'corematrix', 'reference', 'ratio', 'target', 'met'];
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c) =>
    c
      .map((cell, i) => cell.padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  console.log('');
  console.log(line(header));
  console.log(line(widths.map((w) => '-'.repeat(w))));
  for (const c of cells) console.log(line(c));
  console.log('');
}

function median(values) {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function lastLine(text) {
  return (text ?? '').toString().trim().split('\n').pop() ?? '';
}
