#!/usr/bin/env node
// The CLI is written in TypeScript under harness/, compiled to dist/ by tsc and bundled into
// dist/bundle/ (scripts/bundle-cli.mjs), both by `npm run build`: the bundle starts faster.
import { main } from '../dist/bundle/main.js';

process.exitCode = await main(process.argv.slice(2));
