// The second step of `npm run build`, after tsc: bundles the CLI (tsc's dist/cli/main.js and the
// modules it imports) with esbuild. bin/corematrix.js runs the bundles; dist/ itself stays as tsc
// wrote it (tests and scripts import its modules directly).
//
// Why: a command's wall time is mostly Node starting and loading modules, and Node's ES module
// loader costs ~0.4 ms per file (resolve, read, compile, link) before any code runs: ~30 small
// modules cost `corematrix relocate` ~20 ms, a quarter of `bpftool gen min_core_btf`'s whole run.
//
//   dist/bundle/main.js       every command. Code splitting keeps the commands lazy: each dynamic
//                             import() is a chunk loaded only by the command that needs it (and
//                             modules shared by several commands are chunks of their own).
//   dist/cli/main-relocate.js `corematrix relocate` alone, in one file: the CLI, the object reader,
//                             the BTF parser and the CO-RE engine (~150 KB). Split, the same code
//                             is ~17 chunks and loads ~9 ms slower. What relocate only reaches for
//                             some inputs or never (a vmlinuz's decompressors, the other commands)
//                             stays outside: those import()s load tsc's modules next to it in
//                             dist/, which is why this bundle lives in dist/cli.
//
// Packages under node_modules stay external (imported as they are).
//
// A bundled module no longer lives at its dist/ path, so `import.meta.url` is rewritten to the URL
// of the module's own dist/ file (relative to the bundle, so a copied checkout still works):
// modules that find the repository from their own location keep finding it. Any other use of
// import.meta fails the build rather than silently changing meaning.
import { readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const packageJson = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8'));
const dist = join(repo, 'dist');
const cliMain = join(dist, 'cli', 'main.js');
const splitDir = join(dist, 'bundle');
/** How old a chunk no build wrote must be before it is removed. */
const STALE_AFTER_MS = 10 * 60 * 1000;
/**
 * The modules `corematrix relocate` imports lazily that its bundle includes (dist/ paths). Not
 * kernels/read.js, for BTF in an ELF or a vmlinuz: its decompressors' packages would load with the
 * bundle (esbuild hoists a bundled module's package imports to the top), for every raw BTF too.
 */
const RELOCATE_MODULES = [
  'cli/objects.js',
  'core/relocate.js',
  'core/records-json.js',
  'object/object-core.js',
  'object/patched.js',
  'btf/btf.js',
].map((m) => join(dist, m));

/** Relative path from a directory to a file, as an import specifier. */
function specifier(fromDir, file) {
  const path = relative(fromDir, file).split('\\').join('/');
  return path.startsWith('.') ? path : `./${path}`;
}

/** Rewrites `import.meta.url` of each bundled module to its dist/ file's URL (see above). */
function keepImportMetaUrl(outdir) {
  return {
    name: 'keep-import-meta-url',
    setup(b) {
      b.onLoad({ filter: /\.js$/ }, (args) => {
        const source = readFileSync(args.path, 'utf8');
        if (!source.includes('import.meta')) return undefined;
        const other = source.replace(/import\.meta\.url\b/g, '').match(/import\.meta\b(\.\w+)?/);
        if (other !== null) {
          return {
            errors: [{ text: `${other[0]} is not supported in bundled modules (only import.meta.url is)` }],
          };
        }
        const url = `new URL(${JSON.stringify(specifier(outdir, args.path))}, import.meta.url).href`;
        return { contents: source.replace(/import\.meta\.url\b/g, url), loader: 'js' };
      });
    },
  };
}

/** Leaves every import() of a module outside `included` to load from dist/ at run time. */
function onlyLazyImportsOf(included, outdir) {
  return {
    name: 'only-lazy-imports-of',
    setup(b) {
      b.onResolve({ filter: /^\.\.?\// }, (args) => {
        if (args.kind !== 'dynamic-import') return undefined;
        const file = join(args.resolveDir, args.path);
        if (included.includes(file)) return undefined;
        return { path: specifier(outdir, file), external: true };
      });
    },
  };
}

const common = {
  absWorkingDir: repo,
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  packages: 'external',
  sourcemap: 'linked',
  logLevel: 'warning',
};

const [split] = await Promise.all([
  build({
    ...common,
    entryPoints: { main: cliMain },
    outdir: splitDir,
    splitting: true,
    chunkNames: '[name]-[hash]',
    metafile: true,
    plugins: [keepImportMetaUrl(splitDir)],
  }),
  build({
    ...common,
    // commander is bundled in too: imported from node_modules it costs ~14 ms (Node's CommonJS
    // loader starting up for one package), in the bundle ~1 ms. Its require()s of Node's builtins
    // need a real require.
    packages: undefined,
    external: Object.keys(packageJson.dependencies).filter((name) => name !== 'commander'),
    banner: {
      js: "import { createRequire as __cmCreateRequire } from 'node:module';\nconst require = __cmCreateRequire(import.meta.url);",
    },
    entryPoints: [cliMain],
    outfile: join(dist, 'cli', 'main-relocate.js'),
    plugins: [onlyLazyImportsOf(RELOCATE_MODULES, join(dist, 'cli')), keepImportMetaUrl(join(dist, 'cli'))],
  }),
]);

// Chunk names carry a content hash: remove those of earlier builds. Only old ones: another build
// running at the same time in this working tree may have just written chunks its main.js needs.
const written = new Set(Object.keys(split.metafile.outputs).map((file) => basename(file)));
const staleBefore = Date.now() - STALE_AFTER_MS;
for (const name of readdirSync(splitDir)) {
  const file = join(splitDir, name);
  if (!written.has(name) && statSync(file).mtimeMs < staleBefore) rmSync(file, { force: true });
}
