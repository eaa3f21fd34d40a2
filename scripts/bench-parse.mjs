// The corematrix side of the parse benchmark, run by bench.mjs in a process of its own so that
// "cold" really is the first parse a fresh process does (no JIT warm-up yet, as in the CLI).
//
//   node scripts/bench-parse.mjs FILE ITERATIONS [NAME KIND]...
//
// Each iteration reads FILE as the CLI does (readInput: read, detect the container, Btf.parse)
// and looks up every NAME/KIND pair (whatever index the lookups build counts). Prints JSON with
// every iteration's time in nanoseconds and the ids found, in the shape the libbpf helper prints.
import { readInput } from '../dist/cli/input.js';

const [file, iterationsText, ...pairs] = process.argv.slice(2);
const iterations = Number(iterationsText);
if (file === undefined || !(iterations > 0) || pairs.length % 2 !== 0) {
  process.stderr.write('usage: bench-parse.mjs FILE ITERATIONS [NAME KIND]...\n');
  process.exit(2);
}
const lookups = [];
for (let i = 0; i < pairs.length; i += 2) lookups.push({ name: pairs[i], kind: pairs[i + 1] });

const ns = [];
let found = [];
let typeCount = 0;
for (let it = 0; it < iterations; it++) {
  const start = process.hrtime.bigint();
  const { btf } = await readInput(file);
  // libbpf reports a missing type as -ENOENT; the same here, so the two can be compared as is.
  found = lookups.map(({ name, kind }) => btf.findByNameKind(name, kind) ?? -2);
  ns.push(Number(process.hrtime.bigint() - start));
  typeCount = btf.typeCount;
}
process.stdout.write(`${JSON.stringify({ typeCount, found, ns })}\n`);
