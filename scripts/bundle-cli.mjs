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
//   dist/cli/main-relocate.cjs `corematrix relocate` alone, in one CommonJS script: the CLI, the
//                             object reader, the BTF parser and the CO-RE engine (~280 KB with
//                             commander). Split, the same code is ~17 chunks and loads ~9 ms slower.
//                             What relocate only reaches for some inputs or never (a vmlinuz's
//                             decompressors, the other commands) stays outside: those import()s
//                             load tsc's modules next to it in dist/, which is why this bundle
//                             lives in dist/cli.
//   dist/cli/main-relocate.cjs.cache  V8's code cache of that script, every function in it
//                             compiled: bin/corematrix.js starts relocate from it rather than from
//                             source (~15-20 ms less of a run that bpftool is the measure of). A
//                             script, not a module, because Node 20 has code caches only for
//                             scripts (vm.Script); a module's compile cache came in Node 22.
//
// Packages under node_modules stay external (imported as they are).
//
// A bundled module no longer lives at its dist/ path, so `import.meta.url` is rewritten to the URL
// of the module's own dist/ file (relative to the bundle, so a copied checkout still works):
// modules that find the repository from their own location keep finding it. Any other use of
// import.meta fails the build rather than silently changing meaning.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { build } from 'esbuild';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const packageJson = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8'));
const dist = join(repo, 'dist');
const cliMain = join(dist, 'cli', 'main.js');
const splitDir = join(dist, 'bundle');
const relocateBundle = join(dist, 'cli', 'main-relocate.cjs');
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

/**
 * commander requires node:child_process as it loads, for subcommands that are programs of their
 * own (corematrix has none); loading that module costs a fresh process ~2 ms. In the relocate
 * bundle commander gets an object that loads it at its first use instead.
 */
function commanderChildProcessOnDemand() {
  const commanderDir = `${sep}node_modules${sep}commander${sep}`;
  return {
    name: 'commander-child-process-on-demand',
    setup(b) {
      b.onResolve({ filter: /^node:child_process$/ }, (args) =>
        args.importer.includes(commanderDir) ? { path: 'child_process', namespace: 'on-demand' } : undefined,
      );
      b.onLoad({ filter: /.*/, namespace: 'on-demand' }, () => ({
        contents:
          "let real;\nmodule.exports = new Proxy({}, { get: (_, key) => (real ??= require('node:child_process'))[key] });",
        loader: 'js',
      }));
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

const [split, relocate] = await Promise.all([
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
    format: 'cjs',
    // commander is bundled in too: imported from node_modules it costs ~14 ms (Node's CommonJS
    // loader starting up for one package), in the bundle ~1 ms.
    packages: undefined,
    external: Object.keys(packageJson.dependencies).filter((name) => name !== 'commander'),
    entryPoints: [cliMain],
    outfile: relocateBundle,
    metafile: true,
    // A script has no import.meta: a bundled module that uses it must not end up here.
    logOverride: { 'empty-import-meta': 'error' },
    plugins: [onlyLazyImportsOf(RELOCATE_MODULES, join(dist, 'cli')), commanderChildProcessOnDemand()],
  }),
]);
loadLazyModulesThroughLauncher(relocateBundle, relocate.metafile);
writeCodeCache(relocateBundle);
// The ES module bundle earlier builds made in its place.
for (const old of ['main-relocate.js', 'main-relocate.js.map'])
  rmSync(join(dist, 'cli', old), { force: true });

// Chunk names carry a content hash: remove those of earlier builds. Only old ones: another build
// running at the same time in this working tree may have just written chunks its main.js needs.
const written = new Set(Object.keys(split.metafile.outputs).map((file) => basename(file)));
const staleBefore = Date.now() - STALE_AFTER_MS;
for (const name of readdirSync(splitDir)) {
  const file = join(splitDir, name);
  if (!written.has(name) && statSync(file).mtimeMs < staleBefore) rmSync(file, { force: true });
}

/**
 * Writes the V8 code cache of a CommonJS bundle next to it (`file`.cache), with every function
 * compiled: V8 compiles a function only when it first runs, so a cache made right after compiling
 * holds little more than the top level, and one made after a run holds what that run's input
 * reached. --no-lazy compiles every function up front, for this one compilation only (V8 keys a
 * cache to its flags: compiled under --no-lazy throughout, the cache would not match a normal run).
 * It compiles through bin/corematrix.js's own compileBundle, the source text a run compiles.
 * A cache V8 will not take at run time is removed: relocate then compiles from source.
 */
function writeCodeCache(file) {
  const { compileBundle } = createRequire(import.meta.url)('../bin/corematrix.js');
  const cache = `${file}.cache`;
  rmSync(cache, { force: true });
  let script;
  setFlagsFromString('--no-lazy');
  try {
    script = compileBundle(file);
  } finally {
    setFlagsFromString('--lazy');
  }
  const temp = `${cache}.${process.pid}.tmp`;
  writeFileSync(temp, script.createCachedData());
  renameSync(temp, cache);
  // Checked in a process of its own, as a run will use it.
  const check = spawnSync(
    process.execPath,
    [
      '-e',
      `const { compileBundle } = require(${JSON.stringify(join(repo, 'bin', 'corematrix.js'))});
       const fs = require('node:fs');
       const file = ${JSON.stringify(file)};
       process.exitCode = compileBundle(file, fs.readFileSync(file + '.cache')).cachedDataRejected ? 1 : 0;`,
    ],
    { stdio: 'inherit' },
  );
  if (check.status !== 0) {
    rmSync(cache, { force: true });
    console.warn(
      `bundle-cli: V8 rejects the code cache of ${relative(repo, file)}: relocate will compile from source`,
    );
  }
}

/**
 * Makes the script call `__load(specifier)`, a function bin/corematrix.js passes in, where it said
 * `import(specifier)` for a module left in dist/. V8 does not keep what a script's import() needs
 * in a code cache (the script's host-defined options): an import() in functions compiled from the
 * cache fails ("A dynamic import callback was not specified"). `__load` is as long as `import`, so
 * the source map stays right. Every external import() esbuild reports must be rewritten, and
 * nothing else is.
 */
function loadLazyModulesThroughLauncher(file, metafile) {
  const output = metafile.outputs[relative(repo, file)];
  const lazy = new Set(
    output.imports.filter((i) => i.kind === 'dynamic-import' && i.external).map((i) => i.path),
  );
  let rewritten = 0;
  const source = readFileSync(file, 'utf8').replace(/\bimport\(("[^"\\]+")\)/g, (call, quoted) => {
    const specifier = JSON.parse(quoted);
    if (!lazy.has(specifier)) return call;
    rewritten++;
    return `__load(${quoted})`;
  });
  const calls = source.match(/\bimport\(/g)?.length ?? 0;
  if (calls !== 0 || rewritten === 0) {
    throw new Error(`bundle-cli: ${relative(repo, file)}: ${calls} import() left, ${rewritten} rewritten`);
  }
  // bin/corematrix.js reads the script as Latin-1, quicker than UTF-8: it must be ASCII. esbuild
  // escapes non-ASCII in strings, regular expressions and names; what is left is in comments.
  writeFileSync(
    file,
    source.replace(/[^\x00-\x7f]/gu, (c) => `\\u{${c.codePointAt(0).toString(16)}}`),
  );
}
