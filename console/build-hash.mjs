// The console's build stamp: a SHA-256 over its sources (this folder minus dist/), written to
// dist/source-hash.txt after `vite build`. `node console/build-hash.mjs --check` exits 1 when the
// committed build was made from other sources (test/unit/console-build.test.ts runs it).
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('.', import.meta.url));
const SKIP = new Set(['dist', 'node_modules']);

function files(dir) {
  const out = [];
  for (const n of readdirSync(dir).sort()) {
    if (SKIP.has(n)) continue;
    const full = join(dir, n);
    if (statSync(full).isDirectory()) out.push(...files(full));
    else out.push(full);
  }
  return out;
}

export function sourceHash() {
  const h = createHash('sha256');
  for (const f of files(root)) {
    // Line endings normalized, so a checkout with CRLF hashes the same.
    h.update(relative(root, f).split(sep).join('/') + '\0' + readFileSync(f, 'utf8').replace(/\r\n/g, '\n') + '\0');
  }
  // The toolchain's versions are part of the source: a new Vite or Preact makes other output.
  const lock = JSON.parse(readFileSync(join(root, '..', 'package-lock.json'), 'utf8'));
  for (const p of ['vite', 'preact', '@preact/preset-vite', 'uplot']) h.update(`${p}@${lock.packages?.[`node_modules/${p}`]?.version ?? '?'}\0`);
  return h.digest('hex');
}

const stamp = join(root, 'dist', 'source-hash.txt');
if (process.argv.includes('--check')) {
  let recorded = '';
  try {
    recorded = readFileSync(stamp, 'utf8').trim();
  } catch {}
  const now = sourceHash();
  if (recorded !== now) {
    process.stderr.write(`console/dist was built from other sources (recorded ${recorded || 'nothing'}, sources ${now}): run \`npm run console:build\` and commit console/dist\n`);
    process.exit(1);
  }
  process.stdout.write(`console/dist matches its sources (${now})\n`);
} else {
  writeFileSync(stamp, sourceHash() + '\n');
}
