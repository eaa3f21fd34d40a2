/**
 * report.json: the source of truth of a corematrix run. Every other format (HTML, JUnit, Markdown)
 * is rendered from this file alone, and baselines are diffed against it, so it is versioned and
 * validated: the zod schema below is the definition, `reportJsonSchema()` publishes it as JSON
 * Schema (docs/report.schema.json), and readers refuse a file whose schemaVersion they do not know.
 *
 * Strings in it come from objects and kernels (type, field, program names are attacker-controlled):
 * renderers must escape every one.
 */
import { z } from 'zod';

export const REPORT_SCHEMA_VERSION = 1;

const Kernel = z.object({
  /** The matrix's name for it. */
  name: z.string(),
  /** Where it comes from, for people ("Debian bookworm cloud-amd64 6.1", "host", "local ./btf"). */
  source: z.string(),
  release: z.string().optional(),
  arch: z.string(),
  /** Debian: the image package and its version. */
  package: z.string().optional(),
  version: z.string().optional(),
  /** sha256 of the kernel's BTF as read. */
  btfSha256: z.string().optional(),
});

const BpfObject = z.object({
  /** The name the report uses (the path as given, or the case's name). */
  name: z.string(),
  path: z.string(),
  sha256: z.string(),
  /** The compiler toolchain that built it, when the matrix has a compiler axis. */
  compiler: z.string().optional(),
});

const Classification = z.enum(['resolved', 'guarded', 'needs-guard', 'error']);

/** One CO-RE relocation: the fields of `corematrix relocate --json`, plus its classification. */
const Relocation = z.object({
  section: z.string(),
  index: z.number().int(),
  function: z.string(),
  insn: z.number().int(),
  kind: z.string(),
  /** In C terms: `struct task_struct.__state`. */
  access: z.string(),
  /** The raw access string (`0:1`). */
  spec: z.string(),
  result: z.enum(['patched', 'poisoned', 'error']),
  /** For patched: the instruction's value before (local) and after (target), decimal. */
  old: z.string().optional(),
  new: z.string().optional(),
  message: z.string().optional(),
  /** libbpf's formatted local and target specs (offsets on both sides). */
  localSpec: z.string().optional(),
  targetSpec: z.string().optional(),
  classification: Classification,
  /** For needs-guard: what would make the access portable. */
  fix: z.string().optional(),
});

const Reason = z.object({ source: z.enum(['object', 'loader', 'feature', 'guard']), message: z.string() });

const StaticTier = z.object({
  verdict: z.enum(['loads', 'rejected']),
  reasons: z.array(Reason),
  /** Causes the static tier cannot see. */
  unknown: z.array(z.string()),
});

const VmTier = z.object({
  verdict: z.enum(['loaded', 'rejected', 'refused-before-load', 'infra_error']),
  errno: z.number().int().optional(),
  errnoName: z.string().optional(),
  /** The first lines of the verifier log. */
  logExcerpt: z.string().optional(),
  /** The verdict's cause in plain words. */
  cause: z.string().optional(),
  insnsProcessed: z.number().int().optional(),
});

const Program = z.object({
  name: z.string(),
  section: z.string(),
  static: StaticTier.optional(),
  vm: VmTier.optional(),
  /** Set when both tiers ran and disagree: why, as far as known. */
  disagreement: z.string().optional(),
  /** The program's CO-RE relocations (those of the functions it holds). */
  relocations: z.array(Relocation),
});

/** The colour of a cell in the grid. */
export const CellStatus = z.enum(['ok', 'needs-guard', 'failing', 'infra_error', 'error']);

const Cell = z.object({
  kernel: z.string(),
  object: z.string(),
  status: CellStatus,
  programs: z.array(Program),
  /** libbpf would refuse the object on this kernel (e.g. an ambiguous relocation). */
  error: z.string().optional(),
  /** VM faults: what happened, and the console tail. */
  infra: z.object({ reason: z.string(), consoleTail: z.string() }).optional(),
  timings: z
    .object({ staticMs: z.number().optional(), bootMs: z.number().optional(), loadMs: z.number().optional() })
    .optional(),
});

/** How an expectation came out: `skipped` when the run had nothing to check it on. */
export const ExpectationStatus = z.enum(['passed', 'failed', 'skipped']);

/** An expectation of the matrix (`expect:`) or of a case file (`expect`, `check`), as the run found it. */
const Expectation = z.object({
  /** `<object>: <what is expected>`, as the run prints it: `x.bpf.o: task_state_new_only loads on >= 5.14`. */
  name: z.string(),
  /** Where it is declared: `FILE:LINE` in the matrix (the matrix as the run names it), or the case file. */
  source: z.string(),
  status: ExpectationStatus,
  /** failed: what broke it, one line per failure; skipped: why nothing was checked. */
  message: z.string().optional(),
  /** The kernels whose cells it was checked on, in the report's kernel order. */
  kernels: z.array(z.string()).optional(),
});

export const ReportSchema = z.object({
  schemaVersion: z.literal(REPORT_SCHEMA_VERSION),
  generatedAt: z.string(),
  corematrix: z.object({ version: z.string() }),
  run: z.object({
    tiers: z.array(z.enum(['static', 'vm'])),
    matrix: z.string().optional(),
    /** Set when this report is one shard of a run (before merging). */
    shard: z.object({ index: z.number().int().min(1), count: z.number().int().min(1) }).optional(),
    durationMs: z.number(),
  }),
  kernels: z.array(Kernel),
  objects: z.array(BpfObject),
  cells: z.array(Cell),
  /** The run's expectations, in the order they are declared (absent when it had none). */
  expectations: z.array(Expectation).optional(),
});

export type Report = z.infer<typeof ReportSchema>;
export type ReportKernel = z.infer<typeof Kernel>;
export type ReportObject = z.infer<typeof BpfObject>;
export type ReportCell = z.infer<typeof Cell>;
export type ReportProgram = z.infer<typeof Program>;
export type ReportRelocation = z.infer<typeof Relocation>;
export type ReportCellStatus = z.infer<typeof CellStatus>;
export type ReportExpectation = z.infer<typeof Expectation>;
export type ReportExpectationStatus = z.infer<typeof ExpectationStatus>;

/** The schema as JSON Schema (published as docs/report.schema.json). */
export function reportJsonSchema(): unknown {
  return z.toJSONSchema(ReportSchema);
}
