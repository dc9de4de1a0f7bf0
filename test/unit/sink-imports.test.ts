/**
 * Sinks share through the SDK, not through each other (issue 13, point 7): a built-in sink
 * imports only what a third-party plugin can import too, so whatever two sinks share is in
 * the SDK where every plugin can use it, and no sink depends on another's internals.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { REPO } from '../helpers/context.js';

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? tsFiles(p) : f.endsWith('.ts') ? [p] : [];
  });
}

/** Every module specifier a file imports or re-exports, statically or dynamically. */
function specifiers(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/^\s*(?:import|export)\b[^;]*?\bfrom\s*['"]([^'"]+)['"]/gms)) out.push(m[1]!);
  for (const m of text.matchAll(/^\s*import\s*['"]([^'"]+)['"]/gm)) out.push(m[1]!);
  for (const m of text.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)) out.push(m[1]!);
  return out;
}

test('a sink imports only its own files, the public SDK entry points, Node built-ins and runtime dependencies', () => {
  const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { exports: Record<string, string>; dependencies: Record<string, string> };
  // The source files behind the package's entry points: `./dist/src/sdk/index.js` → `src/sdk/index.js`.
  const entryPoints = new Map(Object.entries(pkg.exports).map(([name, target]) => [target.replace(/^\.\/dist\//, ''), name]));
  const sinksDir = join(REPO, 'sinks');
  const offenders: string[] = [];
  let checked = 0;
  for (const file of tsFiles(sinksDir)) {
    const sinkDir = join(sinksDir, relative(sinksDir, file).split('/')[0]!);
    const where = relative(REPO, file);
    for (const spec of specifiers(readFileSync(file, 'utf8'))) {
      checked++;
      if (spec.startsWith('.')) {
        const target = resolve(dirname(file), spec);
        if (target.startsWith(sinkDir + '/')) continue; // its own files
        const fromRoot = relative(REPO, target);
        if (entryPoints.has(fromRoot)) continue; // tributary/sdk, tributary/sdk/warehouse, …
        offenders.push(`${where} imports ${spec}: ${fromRoot.startsWith('sinks/') ? "another sink's internals" : 'engine internals'} (move what is shared into the SDK)`);
      } else if (spec.startsWith('node:') || builtinModules.includes(spec)) {
        continue;
      } else {
        const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
        if (!(name in pkg.dependencies)) offenders.push(`${where} imports ${spec}, which is not a runtime dependency in package.json`);
      }
    }
  }
  assert.ok(checked > 50, `read the imports of the sinks (${checked})`);
  assert.deepEqual(offenders, []);
});
