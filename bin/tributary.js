#!/usr/bin/env node
// Thin launcher: the CLI lives in the compiled dist/ tree (built by `npm ci` through `prepare`).
import('../dist/src/cli/main.js').then((m) => m.main(process.argv.slice(2))).catch((err) => {
  console.error(err?.stack ?? String(err));
  process.exit(1);
});
