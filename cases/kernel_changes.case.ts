/**
 * Checks of kernel_changes.bpf.o that matrix.yaml's `expect:` cannot state (docs/run.md,
 * "Case files"): `corematrix run` loads this file for build/cases/kernel_changes.bpf.o.
 */

interface Program {
  name: string;
  vm?: { verdict: string };
  static?: { verdict: string };
}
interface Cell {
  kernel: string;
  programs: Program[];
}
interface Api {
  check(name: string, fn: (context: { cells: Cell[] }) => unknown): void;
}

/** Loads: the VM's verdict when it gave one, else the static prediction. */
function loads(p: Program): boolean | undefined {
  if (p.vm !== undefined && p.vm.verdict !== 'infra_error') return p.vm.verdict === 'loaded';
  if (p.static !== undefined) return p.static.verdict === 'loads';
  return undefined;
}

// Changes that were a clean switch in one release: on every kernel exactly one of the two variants
// loads (inode i_ctime is left out: between 6.6 and 6.11 neither of its variants loads).
const SWITCHES = ['task_state', 'bio_disk', 'rss'];

export default (c: Api) => {
  c.check('each clean switch has exactly one variant loading on every kernel', ({ cells }) => {
    const broken: string[] = [];
    for (const cell of cells) {
      for (const change of SWITCHES) {
        const old = cell.programs.find((p) => p.name === `${change}_old_only`);
        const now = cell.programs.find((p) => p.name === `${change}_new_only`);
        if (old === undefined || now === undefined) continue;
        const a = loads(old);
        const b = loads(now);
        if (a === undefined || b === undefined) continue;
        if (a === b) broken.push(`${cell.kernel}: ${change}: ${a ? 'both variants load' : 'neither variant loads'}`);
      }
    }
    if (broken.length > 0) throw new Error(broken.join('; '));
  });
};
