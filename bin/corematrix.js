#!/usr/bin/env node
'use strict';
// The `corematrix` command: starts the CLI bundles `npm run build` makes in dist/
// (scripts/bundle-cli.mjs): dist/cli/main-relocate.cjs for `relocate`, dist/bundle/main.js for every
// other command.
//
// This file is CommonJS (bin/package.json says so): Node starts an ES module entry point ~5 ms
// slower than a script (it sets up its ES module loader first), a noticeable share of a
// `relocate` that has to keep up with bpftool as a whole process.
//
// For the same reason `relocate`'s bundle is a script compiled with the V8 code cache the build
// made next to it (dist/cli/main-relocate.cjs.cache): starting from it skips parsing and compiling
// ~280 KB of JavaScript. V8 checks a cache against the source text, its own version and its flags,
// and compiles from source when anything differs (another Node, an edited bundle, --some-v8-flag):
// slower then, never different.
const { existsSync, readFileSync } = require('node:fs');
const { createRequire } = require('node:module');
const { dirname, join, resolve } = require('node:path');
const { pathToFileURL } = require('node:url');
const vm = require('node:vm');

const RELOCATE_BUNDLE = join(__dirname, '..', 'dist', 'cli', 'main-relocate.cjs');

/**
 * Compiles a CommonJS bundle the way Node's loader would (the same function wrapper), with
 * `cachedData` as its V8 code cache when given. The build compiles through this function too, so
 * the cache it makes is for exactly the source text compiled here.
 */
function compileBundle(file, cachedData) {
  // The build makes the bundle ASCII-only (scripts/bundle-cli.mjs): Latin-1 reads it the same,
  // quicker.
  const source = readFileSync(file, 'latin1');
  // `__load` is the bundle's import() of the modules it leaves in dist/ (see runBundle).
  return new vm.Script(`(function (exports, require, module, __filename, __dirname, __load) {${source}\n})`, {
    filename: file,
    cachedData,
  });
}

/**
 * Runs a script compileBundle made as the module `file`; returns its exports. The bundle imports
 * the modules it leaves in dist/ through `__load` (the build rewrote its import()s): an import() in
 * code compiled from a code cache has no module loader to go to.
 */
function runBundle(script, file) {
  const module = { exports: {} };
  const load = (specifier) => import(pathToFileURL(resolve(dirname(file), specifier)).href);
  script.runInThisContext()(module.exports, createRequire(file), module, file, dirname(file), load);
  return module.exports;
}

/** The code cache of `file` (`file`.cache), or undefined when there is none. */
function readCodeCache(file) {
  try {
    return readFileSync(`${file}.cache`);
  } catch {
    return undefined;
  }
}

async function main(args) {
  if (args[0] === 'relocate') {
    if (!existsSync(RELOCATE_BUNDLE)) return notBuilt(RELOCATE_BUNDLE);
    const script = compileBundle(RELOCATE_BUNDLE, readCodeCache(RELOCATE_BUNDLE));
    return runBundle(script, RELOCATE_BUNDLE).main(args);
  }
  const bundle = join(__dirname, '..', 'dist', 'bundle', 'main.js');
  if (!existsSync(bundle)) return notBuilt(bundle);
  return (await import(pathToFileURL(bundle).href)).main(args);
}

/** A checkout nobody has built yet: one line saying so, and the usage exit code. */
function notBuilt(file) {
  process.stderr.write(`corematrix: ${file} is missing: build the CLI first (npm run build)\n`);
  return 2;
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
} else {
  module.exports = { compileBundle, runBundle, RELOCATE_BUNDLE };
}
