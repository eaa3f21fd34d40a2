// The second step of `npm run build`, after tsc: bundles the CLI (tsc's dist/cli/main.js and every
// module it imports, also lazily) into dist/bundle/, which bin/corematrix.js runs.
//
// Why: a command's wall time is mostly Node starting and loading modules. Loading ~30 small ES
// modules one by one (resolve, read, compile, link each) cost `corematrix relocate` ~20 ms, a
// quarter of `bpftool gen min_core_btf`'s whole run; a bundle loads a handful of files. Code
// splitting keeps the commands lazy: each dynamic import() stays a chunk of its own, loaded only by
// the command that needs it. Packages under node_modules stay external (imported as they are).
//
// dist/ itself stays as tsc wrote it: tests and scripts import its modules directly.
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
const dist = join(repo, 'dist');
const outdir = join(dist, 'bundle');
/** How old a chunk no build wrote must be before it is removed. */
const STALE_AFTER_MS = 10 * 60 * 1000;

const keepImportMetaUrl = {
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
      const own = relative(outdir, args.path).split('\\').join('/');
      const url = `new URL(${JSON.stringify(own)}, import.meta.url).href`;
      return { contents: source.replace(/import\.meta\.url\b/g, url), loader: 'js' };
    });
  },
};

const result = await build({
  absWorkingDir: repo,
  entryPoints: { main: join(dist, 'cli', 'main.js') },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  packages: 'external',
  chunkNames: '[name]-[hash]',
  sourcemap: 'linked',
  metafile: true,
  plugins: [keepImportMetaUrl],
  logLevel: 'warning',
});

// Chunk names carry a content hash: remove those of earlier builds. Only old ones: another build
// running at the same time in this working tree may have just written chunks its main.js needs.
const written = new Set(Object.keys(result.metafile.outputs).map((file) => basename(file)));
const staleBefore = Date.now() - STALE_AFTER_MS;
for (const name of readdirSync(outdir)) {
  const file = join(outdir, name);
  if (!written.has(name) && statSync(file).mtimeMs < staleBefore) rmSync(file, { force: true });
}
