// The example nightly workflow (.github/workflows/nightly.yml and its setup action) against the
// real CLI: valid YAML, jobs wired to each other (needs, outputs, artifacts, paths), and every
// `corematrix …` command line it runs parsed by the CLI's own parser, so a renamed command or flag
// breaks this test rather than the first nightly after it.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import { githubMatrix } from '../report/shard.js';
import { runCorematrix } from '../test-support/cli.js';
import { type Invocation, parseArguments } from './main.js';

const repo = path.join(import.meta.dirname, '..', '..');
const WORKFLOW = '.github/workflows/nightly.yml';

type Env = Record<string, string>;
interface Step {
  id?: string;
  name?: string;
  uses?: string;
  run?: string;
  if?: string;
  env?: Env;
  with?: Record<string, string>;
}
interface Job {
  needs?: string | string[];
  if?: string;
  outputs?: Record<string, string>;
  env?: Env;
  strategy?: { matrix?: unknown };
  steps: Step[];
}
interface Workflow {
  env?: Env;
  jobs: Record<string, Job>;
}

/** The file parsed as YAML; a syntax error, a duplicate key or a warning fails. */
function readYaml<T>(file: string): T {
  const doc = parseDocument(readFileSync(path.join(repo, file), 'utf8'), { uniqueKeys: true });
  expect([...doc.errors, ...doc.warnings].map((e) => `${file}: ${e.message}`)).toEqual([]);
  return doc.toJS() as T;
}

const workflow = readYaml<Workflow>(WORKFLOW);
const setupAction = readYaml<{ inputs: Record<string, unknown>; runs: { steps: Step[] } }>(
  '.github/actions/setup/action.yml',
);
const jobs = Object.entries(workflow.jobs);

/**
 * What the GitHub expressions the commands use stand for in this test. An expression not listed
 * fails the test: a new one must be given a value here, knowingly.
 */
const EXPRESSIONS: Record<string, string> = {
  "inputs.shards || '4'": '4',
  'matrix.shard': '2/4',
  'strategy.job-index': '1',
};

const expression = (e: string) => `\${{ ${e} }}`;

/** `text` with its GitHub expressions replaced by their EXPRESSIONS values. */
function expressions(text: string): string {
  return text.replace(/\$\{\{\s*(.*?)\s*\}\}/g, (_, e: string) => {
    const value = EXPRESSIONS[e];
    if (value === undefined) throw new Error(`${WORKFLOW}: no test value for \${{ ${e} }}`);
    return value;
  });
}

/**
 * The words of the shell command at the start of `text`, as bash splits them: quotes, $VAR and
 * ${VAR} (from `env`, its expressions resolved; unquoted: split on blanks), up to the end of the command (; | & > < ) or a line end).
 */
function shellWords(text: string, env: Env): string[] {
  const words: string[] = [];
  let word: string | undefined;
  let quote: '"' | "'" | undefined;
  const add = (s: string) => {
    word = (word ?? '') + s;
  };
  const end = () => {
    if (word !== undefined) words.push(word);
    word = undefined;
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote === "'") {
      if (c === "'") quote = undefined;
      else add(c);
      continue;
    }
    if (c === '$') {
      const m = /^\$(?:\{([A-Za-z_]\w*)\}|([A-Za-z_]\w*))/.exec(text.slice(i));
      if (m === null) throw new Error(`unsupported shell expansion in: ${text}`);
      const name = (m[1] ?? m[2])!;
      const raw = env[name];
      if (raw === undefined) throw new Error(`$${name} is not set for: ${text}`);
      const value = expressions(raw);
      i += m[0].length - 1;
      if (quote === '"') add(value);
      else {
        const parts = value.split(/\s+/).filter((p) => p !== '');
        parts.forEach((p, k) => {
          if (k > 0) end();
          add(p);
        });
      }
      continue;
    }
    if (quote === '"') {
      if (c === '"') quote = undefined;
      else if (c === '\\' && '"\\$`'.includes(text[i + 1] ?? '')) add(text[++i]!);
      else add(c);
      continue;
    }
    if (c === '"' || c === "'") {
      quote = c;
      word ??= '';
    } else if (c === '\\') add(text[++i] ?? '');
    else if (/\s/.test(c)) {
      if (c === '\n') break;
      end();
    } else if (';|&<>)'.includes(c)) break;
    else add(c);
  }
  if (quote !== undefined) throw new Error(`unterminated quote in: ${text}`);
  end();
  return words;
}

interface CommandLine {
  job: string;
  step: string;
  args: string[];
}

/** Every `npx corematrix …` a run script of the workflow runs, its variables resolved. */
function commandLines(): CommandLine[] {
  const out: CommandLine[] = [];
  for (const [name, job] of jobs) {
    for (const step of job.steps) {
      if (step.run === undefined) continue;
      const env: Env = { ...workflow.env, ...job.env, ...step.env };
      const script = step.run.replace(/\\\n/g, ' ');
      for (const m of script.matchAll(/\bnpx corematrix\b/g)) {
        out.push({
          job: name,
          step: step.name ?? step.run,
          args: shellWords(script.slice(m.index + m[0].length), env),
        });
      }
    }
  }
  return out;
}

async function parsed(args: string[]): Promise<Invocation> {
  const errors: string[] = [];
  let printed = '';
  const io = {
    stdout: {
      write: (t: string | Uint8Array) => {
        printed += String(t);
      },
      flush: () => undefined,
    },
    stderr: (t: string) => {
      errors.push(t);
    },
  };
  const result = await parseArguments(args, io);
  if (typeof result !== 'object') {
    throw new Error(`corematrix ${args.join(' ')}: ${errors.join('').trim() || printed || `exit ${result}`}`);
  }
  return result;
}

const needsOf = (job: Job) => (job.needs === undefined ? [] : [job.needs].flat());

describe(`${WORKFLOW}`, () => {
  it('runs plan, run, merge, diff and report render with arguments the CLI accepts', async () => {
    const lines = commandLines();
    const invocations = await Promise.all(lines.map((l) => parsed(l.args)));
    const by = (command: string) => invocations.filter((i) => i.command === command);
    expect(new Set(invocations.map((i) => i.command))).toEqual(
      new Set(['kernels fetch', 'plan', 'run', 'merge', 'diff', 'report render']),
    );
    const kernels = workflow.env?.KERNELS?.split(' ') ?? [];
    expect(by('kernels fetch')).toEqual([
      { command: 'kernels fetch', matrix: 'matrix.yaml', names: kernels, refresh: true },
    ]);
    expect(by('plan')).toEqual([{ command: 'plan', matrix: 'matrix.yaml', shards: 4, format: 'github' }]);
    expect(by('run')).toEqual([
      {
        command: 'run',
        options: {
          matrix: 'matrix.yaml',
          kernel: kernels,
          shard: '2/4',
          out: 'reports/shard-1',
          strictInfra: false,
        },
      },
    ]);
    expect(by('merge')).toEqual([{ command: 'merge', reports: ['shards/*/report.json'], out: 'reports' }]);
    expect(by('diff')).toEqual([
      {
        command: 'diff',
        old: 'baseline/report.json',
        now: 'reports/report.json',
        json: false,
        markdown: false,
      },
      {
        command: 'diff',
        old: 'baseline/report.json',
        now: 'reports/report.json',
        json: false,
        markdown: true,
      },
    ]);
    expect(by('report render')).toEqual([
      {
        command: 'report render',
        report: 'baseline/report.json',
        out: 'baseline/rendered',
        formats: ['markdown'],
      },
    ]);
    // The kernels named are the default matrix's.
    const matrix = readYaml<{ kernels: { name: string }[] }>('matrix.yaml');
    expect(kernels.length).toBeGreaterThan(0);
    for (const k of kernels) expect(matrix.kernels.map((m) => m.name)).toContain(k);
  });

  it('a renamed flag would fail: the same lines with a flag misspelt are refused by the parser', async () => {
    const line = commandLines().find((l) => l.args[0] === 'merge')!;
    await expect(parsed(line.args.map((a) => (a === '-o' ? '--output-dir' : a)))).rejects.toThrow(
      /required option '-o, --out <DIR>' not specified/,
    );
  });

  it('wires the jobs together: needs, outputs, step ids, the shard matrix', () => {
    for (const [name, job] of jobs) {
      for (const need of needsOf(job))
        expect(Object.keys(workflow.jobs), `${name} needs ${need}`).toContain(need);
      const text = JSON.stringify(job);
      for (const [, need, output] of text.matchAll(/needs\.([\w-]+)\.outputs\.([\w-]+)/g)) {
        expect(needsOf(job), `${name} reads needs.${need}`).toContain(need);
        expect(Object.keys(workflow.jobs[need!]?.outputs ?? {}), `${need}'s outputs`).toContain(output);
      }
      for (const [, id, output] of text.matchAll(/steps\.([\w-]+)\.outputs\.([\w-]+)/g)) {
        const step = job.steps.find((s) => s.id === id);
        expect(step, `${name}: step ${id}`).toBeDefined();
        // The step writes that output to $GITHUB_OUTPUT (name=value or a name<<DELIMITER block).
        expect(step?.run ?? '', `${name}: step ${id} writes ${output}`).toMatch(
          new RegExp(`${output}(=|<<)[^\\n]*[\\s\\S]*GITHUB_OUTPUT`),
        );
      }
      for (const step of job.steps) {
        if (!step.uses?.startsWith('./')) continue;
        expect(existsSync(path.join(repo, step.uses, 'action.yml')), step.uses).toBe(true);
        for (const input of Object.keys(step.with ?? {}))
          expect(Object.keys(setupAction.inputs)).toContain(input);
      }
    }
    // The plan's matrix is githubMatrix's, whose one key the run job reads.
    expect(workflow.jobs.run?.strategy?.matrix).toBe(expression('fromJSON(needs.plan.outputs.matrix)'));
    expect(Object.keys(githubMatrix(4).include[0]!)).toEqual(['shard']);
    expect(JSON.stringify(workflow.jobs.run)).toContain(expression('matrix.shard'));
  });

  it('hands the reports on: shard report.json → merge, merged report.json → the next baseline', () => {
    const steps = jobs.flatMap(([, job]) => job.steps);
    const run = workflow.jobs.run!.steps.find((s) => s.run?.includes('corematrix run'))!;
    const upload = workflow.jobs.run!.steps.find((s) => s.uses?.startsWith('actions/upload-artifact@'))!;
    // The shard's report.json is uploaded from where `run --out` wrote it.
    expect(expressions(upload.with!.path!)).toBe(`${expressions(run.env!.OUT!)}/report.json`);
    const download = workflow.jobs.merge!.steps.find((s) =>
      s.uses?.startsWith('actions/download-artifact@'),
    )!;
    const pattern = new RegExp(`^${download.with!.pattern!.replace(/\*/g, '.*')}$`);
    expect(expressions(upload.with!.name!)).toMatch(pattern);
    // Each artifact lands in PATH/NAME/: the merge's glob finds them.
    expect(
      workflow.jobs.merge!.steps.some((s) => s.run?.includes(`${download.with!.path}/*/report.json`)),
    ).toBe(true);
    // The baseline is the artifact the merge uploads, from this workflow file.
    const baseline = steps.find((s) => s.run?.includes('gh run download'))!.run!;
    const uploaded = workflow.jobs.merge!.steps.filter((s) => s.uses?.startsWith('actions/upload-artifact@'));
    const report = uploaded.find((s) => s.with?.path === 'reports/report.json');
    expect(report).toBeDefined();
    expect(baseline).toContain(`--name ${report!.with!.name}`);
    expect(baseline).toContain(`--workflow ${path.basename(WORKFLOW)}`);
  });

  it('sets the machine up as .ci/run does: the same package list, npm ci', () => {
    const ci = readFileSync(path.join(repo, '.ci', 'run'), 'utf8');
    const scripts = setupAction.runs.steps.map((s) => s.run ?? '').join('\n');
    const listReading =
      /sed -e 's\/#\.\*\/\/' -e 's\/\[\[:space:\]\]\/\/g' scripts\/system-packages\.txt \| grep -v '\^\$'/;
    expect(ci).toMatch(listReading);
    expect(scripts).toMatch(listReading);
    expect(ci).toContain('npm ci --no-audit --no-fund');
    expect(scripts).toContain('npm ci --no-audit --no-fund');
    expect(scripts).toContain('bash scripts/build-cases.sh');
  });

  it('corematrix plan --format github prints the matrix the run job expands', async () => {
    const r = await runCorematrix('plan', '--shards', '3', '--format', 'github');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(githubMatrix(3));
  });
});
