#!/usr/bin/env node
// The CLI is written in TypeScript under harness/, compiled to dist/ by tsc and bundled by
// scripts/bundle-cli.mjs, both by `npm run build`: a bundle starts faster than ~30 modules.
// `relocate` has a bundle of its own, in one file; every other command runs from dist/bundle.
const args = process.argv.slice(2);
const { main } = await import(
  args[0] === 'relocate' ? '../dist/cli/main-relocate.js' : '../dist/bundle/main.js'
);

process.exitCode = await main(args);
