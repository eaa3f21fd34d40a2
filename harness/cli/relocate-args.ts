import type { RelocateOptions } from './objects.js';

/**
 * `corematrix relocate OBJ... --btf FILE [--json]` in its plain form, recognized without commander.
 * Loading commander takes ~10 ms of a fresh process, an eighth of what `bpftool gen min_core_btf`
 * needs for the same relocations, and relocate is the command scripts run object by object.
 *
 * Only what commander would read the same way is recognized: `relocate` first, then in any order
 * object paths (not starting with '-'), `--btf` once followed by a value not starting with '-', and
 * `--json` at most once. Anything else — another option, `--btf=FILE`, `--`, a missing `--btf` or
 * object, `--help` — gives undefined, and commander parses the command line as it always did (with
 * its help and its error messages).
 */
export function plainRelocateArguments(argv: readonly string[]): RelocateOptions | undefined {
  if (argv[0] !== 'relocate') return undefined;
  const objects: string[] = [];
  let btf: string | undefined;
  let json = false;
  for (let i = 1; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--btf') {
      const value = argv[++i];
      if (btf !== undefined || value === undefined || value.startsWith('-')) return undefined;
      btf = value;
    } else if (arg === '--json') {
      if (json) return undefined;
      json = true;
    } else if (arg.startsWith('-')) {
      return undefined;
    } else {
      objects.push(arg);
    }
  }
  if (btf === undefined || objects.length === 0) return undefined;
  return { objects, btf, modules: [], json };
}
