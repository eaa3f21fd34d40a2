/**
 * The schema of matrix.yaml, as written (docs/matrix.md describes every key). load.ts validates
 * a parsed file against it, maps each problem back to its line and column, and turns the result
 * into a `Matrix` (paths resolved, defaults filled in). `matrixJsonSchema()` gives the same
 * schema as JSON Schema, for editors and for reports that embed the matrix.
 */

import { z } from 'zod';
import { EXPECT_KEYS, parseExpectEntry } from './expect.js';

/** Names of kernels: used on the command line and in report file names. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._+-]*$/;

const nonEmptyPath = z.string().min(1);

/** The keys a kernel's entry may have, grouped by the source they declare. */
export const DEBIAN_KEYS = ['suite', 'flavor', 'version', 'package'] as const;
export const LOCAL_KEYS = ['vmlinuz', 'vmlinux', 'btf', 'config'] as const;

export const kernelSchema = z
  .strictObject({
    name: z
      .string()
      .regex(NAME, { error: 'expected a name of letters, digits and . _ + - (e.g. "bookworm")' }),
    // Debian: the newest image package of the suite (with the flavor, and the version prefix).
    suite: z
      .string()
      .regex(/^[a-z][a-z0-9-]*$/, { error: 'expected a Debian suite name such as bookworm, trixie or sid' })
      .optional(),
    flavor: z
      .string()
      .regex(/^[a-z0-9][a-z0-9-]*$/, { error: 'expected a kernel flavor such as cloud-amd64 or amd64' })
      .optional(),
    version: z
      .string()
      .regex(/^[0-9][0-9A-Za-z.+~-]*$/, { error: 'expected a kernel version prefix such as "6.1"' })
      .optional(),
    package: z
      .string()
      .regex(/^linux-image-[a-z0-9.+-]+$/, { error: 'expected an image package name, linux-image-…' })
      .optional(),
    // Local files, relative to the matrix file. `vmlinuz` also gives the host kernel its image.
    vmlinuz: nonEmptyPath.optional(),
    vmlinux: nonEmptyPath.optional(),
    btf: nonEmptyPath.optional(),
    config: nonEmptyPath.optional(),
    host: z.literal(true, { error: 'expected true (leave host out for other kernels)' }).optional(),
  })
  .superRefine((k, ctx) => {
    const has = (key: string) => (k as Record<string, unknown>)[key] !== undefined;
    const debian = DEBIAN_KEYS.filter(has);
    const local = LOCAL_KEYS.filter(has);
    const host = k.host === true;
    if (host) {
      // The running kernel may be given its image (for the vm tier); nothing else.
      const extra = [...debian, ...local.filter((key) => key !== 'vmlinuz')];
      if (extra.length > 0) {
        ctx.addIssue({
          code: 'custom',
          path: [extra[0]!],
          message: `kernel "${k.name}" has two sources: host: true and ${extra[0]}: (the host kernel takes only vmlinuz:)`,
        });
      }
      return;
    }
    if (debian.length > 0 && local.length > 0) {
      ctx.addIssue({
        code: 'custom',
        path: [local[0]!],
        message: `kernel "${k.name}" has two sources: Debian (${debian[0]}:) and local files (${local[0]}:); keep one`,
      });
      return;
    }
    if (debian.length > 0) {
      if (k.suite === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: [debian[0]!],
          message: `kernel "${k.name}": a Debian kernel needs suite: (e.g. suite: bookworm) besides ${debian[0]}:`,
        });
      } else if (k.version !== undefined && k.package !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['package'],
          message: `kernel "${k.name}": give version: (newest matching) or package: (exact), not both`,
        });
      }
      return;
    }
    if (local.length > 0) {
      if (k.vmlinuz === undefined && k.vmlinux === undefined && k.btf === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['config'],
          message: `kernel "${k.name}": local files need vmlinuz:, vmlinux: or btf: besides config:`,
        });
      }
      return;
    }
    ctx.addIssue({
      code: 'custom',
      path: [],
      message: `kernel "${k.name}" has no source: give suite: (Debian), vmlinuz:/vmlinux:/btf: (local files) or host: true`,
    });
  });

/** One entry of a case's `expect:`: the keys are checked here, the rest by parseExpectEntry. */
const expectEntrySchema = z
  .strictObject(Object.fromEntries(EXPECT_KEYS.map((k) => [k, z.unknown().optional()])))
  .superRefine((entry, ctx) => {
    const parsed = parseExpectEntry(entry);
    if ('problems' in parsed)
      for (const p of parsed.problems) ctx.addIssue({ code: 'custom', path: p.path, message: p.message });
  });

export const caseSchema = z.union([
  z.string().min(1),
  z.strictObject({
    path: z.string().min(1),
    /** Only these programs of the matched objects (by function name); default all. */
    programs: z.array(z.string().min(1)).min(1).optional(),
    /** What the programs are expected to do on which kernels (expect.ts has the grammar). */
    expect: z.array(expectEntrySchema).min(1).optional(),
  }),
]);

/**
 * A toolchain of the compiler axis: C sources among the cases are built once with each. A Debian
 * suite's clang runs in a toolchain image made from that suite (harness/build); the host's runs as is.
 */
export const compilerSchema = z
  .strictObject({
    name: z
      .string()
      .regex(NAME, { error: 'expected a name of letters, digits and . _ + - (e.g. "clang-14")' }),
    suite: z
      .string()
      .regex(/^[a-z][a-z0-9-]*$/, { error: 'expected a Debian suite name such as bookworm, trixie or sid' })
      .optional(),
    /** Debian: the clang package (clang, clang-14, …); host: the command or its path. */
    clang: z.string().min(1).optional(),
    host: z.literal(true, { error: 'expected true (leave host out for Debian toolchains)' }).optional(),
  })
  .superRefine((c, ctx) => {
    if (c.host === true && c.suite !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['suite'],
        message: `compiler "${c.name}" has two sources: host: true and suite: (keep one)`,
      });
    } else if (c.host !== true && c.suite === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: [],
        message: `compiler "${c.name}" has no source: give suite: (a Debian suite's clang, in a container) or host: true`,
      });
    } else if (c.suite !== undefined && c.clang !== undefined && !/^clang(-[0-9]+)?$/.test(c.clang)) {
      ctx.addIssue({
        code: 'custom',
        path: ['clang'],
        message: `compiler "${c.name}": clang: is a Debian package here, clang or clang-N (e.g. clang-14), got "${c.clang}"`,
      });
    }
  });

export const TIERS = ['static', 'vm'] as const;

/** Where a matrix's VMs run: QEMU on this host, or QEMU in a container of the executor image. */
export const EXECUTORS = ['local', 'container'] as const;

export const matrixSchema = z
  .strictObject({
    kernels: z.array(kernelSchema).min(1, { error: 'expected at least one kernel' }),
    cases: z.array(caseSchema).min(1, { error: 'expected at least one case glob' }),
    tiers: z.array(z.enum(TIERS)).min(1, { error: 'expected at least one tier: static, vm' }).optional(),
    concurrency: z.int().min(1).max(1024).optional(),
    timeouts: z
      .strictObject({
        /** Seconds a VM may take to boot to the point of loading programs. */
        boot: z.number().positive().optional(),
        /** Seconds one program's load (verifier included) may take. */
        load: z.number().positive().optional(),
      })
      .optional(),
    reports: z.string().min(1).optional(),
    compilers: z
      .array(compilerSchema)
      .min(1, { error: 'expected at least one compiler (or leave compilers out)' })
      .optional(),
    /** Where VMs run: QEMU on this host (local, the default) or in a container (harness/container). */
    executor: z.enum(EXECUTORS, { error: 'expected local or container (where the VMs run)' }).optional(),
  })
  .superRefine((m, ctx) => {
    const seen = new Map<string, number>();
    m.kernels.forEach((k, i) => {
      const first = seen.get(k.name);
      if (first === undefined) seen.set(k.name, i);
      else
        ctx.addIssue({
          code: 'custom',
          path: ['kernels', i, 'name'],
          message: `kernel name "${k.name}" is used twice (first by kernel ${first + 1})`,
        });
    });
    const compilers = new Map<string, number>();
    m.compilers?.forEach((c, i) => {
      const first = compilers.get(c.name);
      if (first === undefined) compilers.set(c.name, i);
      else
        ctx.addIssue({
          code: 'custom',
          path: ['compilers', i, 'name'],
          message: `compiler name "${c.name}" is used twice (first by compiler ${first + 1})`,
        });
    });
    const tiers = new Set<string>();
    m.tiers?.forEach((t, i) => {
      if (tiers.has(t))
        ctx.addIssue({ code: 'custom', path: ['tiers', i], message: `tier ${t} is listed twice` });
      tiers.add(t);
    });
  });

/** matrix.yaml as written. */
export type MatrixFile = z.infer<typeof matrixSchema>;
export type KernelEntry = z.infer<typeof kernelSchema>;
export type CaseEntry = z.infer<typeof caseSchema>;
export type CompilerEntry = z.infer<typeof compilerSchema>;

/** The schema as JSON Schema (draft 2020-12). */
export function matrixJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(matrixSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
}

/** The keys allowed at each level, for "did you mean" suggestions. */
export const KNOWN_KEYS = {
  root: Object.keys(matrixSchema.shape),
  kernel: Object.keys(kernelSchema.shape),
  case: ['path', 'programs', 'expect'],
  expect: [...EXPECT_KEYS],
  timeouts: ['boot', 'load'],
  compiler: Object.keys(compilerSchema.shape),
} as const;
