/**
 * One error catalogue: every code that can be thrown is in src/core/errors.ts, raised
 * somewhere, and documented in docs/errors.md with its cause and a fix a person can act on;
 * the docs name no code that does not exist.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { ErrorCodes } from '../../src/core/errors.js';
import { REPO } from '../helpers/context.js';

/** Every .ts file under the folders that ship (tests are left out: they assert codes, not raise them). */
function sourceFiles(): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) {
        if (e.name !== 'node_modules' && e.name !== 'results') walk(p);
      } else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(p);
    }
  };
  for (const top of ['src', 'connectors', 'sinks', 'bench']) walk(join(REPO, top));
  return out;
}

const catalogue = new Map<string, string>(Object.entries(ErrorCodes)); // key -> code
const codes = new Set(catalogue.values());

/** `ErrorCodes.KEY` uses and `'TRB1234'` literals in the shipped source, with where they are. */
function uses(): { keys: Map<string, string[]>; literals: Map<string, string[]> } {
  const keys = new Map<string, string[]>();
  const literals = new Map<string, string[]>();
  const add = (m: Map<string, string[]>, k: string, at: string) => m.set(k, [...(m.get(k) ?? []), at]);
  for (const f of sourceFiles()) {
    const rel = relative(REPO, f);
    const text = readFileSync(f, 'utf8');
    for (const m of text.matchAll(/\bErrorCodes\.([A-Z][A-Z0-9_]*)/g)) add(keys, m[1]!, rel);
    if (rel === join('src', 'core', 'errors.ts')) continue; // the catalogue itself
    for (const m of text.matchAll(/['"`](TRB\d{4})\b/g)) add(literals, m[1]!, rel);
  }
  return { keys, literals };
}

/** The rows of docs/errors.md's tables: `| TRB1234 | cause | fix |`. */
function documented(): Map<string, { cause: string; fix: string }[]> {
  const doc = readFileSync(join(REPO, 'docs', 'errors.md'), 'utf8');
  const rows = new Map<string, { cause: string; fix: string }[]>();
  for (const line of doc.split('\n')) {
    const m = /^\|\s*(TRB\d{4})\s*\|(.*)\|\s*$/.exec(line);
    if (!m) continue;
    // Split on unescaped pipes: a cell may hold `\|`.
    const cells = m[2]!.split(/(?<!\\)\|/).map((c) => c.trim());
    assert.equal(cells.length, 2, `docs/errors.md: the row of ${m[1]} must have two cells after the code (cause | fix): ${line}`);
    rows.set(m[1]!, [...(rows.get(m[1]!) ?? []), { cause: cells[0]!, fix: cells[1]! }]);
  }
  return rows;
}

/** A fix that tells a person nothing to do. */
const EMPTY_FIX = /^(see (the )?(message|error)\b|the message (names|says)\b|(none|n\/a|-|tbd|todo|report it)\.?$)/i;

describe('the error catalogue', () => {
  it('gives each code to one name only, in the TRBnnnn form', () => {
    const seen = new Map<string, string>();
    for (const [key, code] of catalogue) {
      assert.match(code, /^TRB\d{4}$/, `${key}: ${code}`);
      assert.ok(!seen.has(code), `${code} is both ${seen.get(code)} and ${key}: give each cause its own code`);
      seen.set(code, key);
    }
  });

  it('holds every code the source raises, and every code it holds is raised', () => {
    const { keys, literals } = uses();
    const unknownKeys = [...keys].filter(([k]) => !catalogue.has(k)).map(([k, at]) => `ErrorCodes.${k} (${at.join(', ')})`);
    assert.deepEqual(unknownKeys, [], 'names not in src/core/errors.ts');
    const unknownLiterals = [...literals].filter(([c]) => !codes.has(c)).map(([c, at]) => `${c} (${at.join(', ')})`);
    assert.deepEqual(unknownLiterals, [], 'code literals not in src/core/errors.ts');
    const unused = [...catalogue.keys()].filter((k) => !keys.has(k)).map((k) => `${k} ${catalogue.get(k)}`);
    assert.deepEqual(unused, [], 'catalogue codes nothing raises: raise them, or retire them (remove the name, keep the number unused, and say so in docs/errors.md)');
  });

  it('documents every code in docs/errors.md once, with its cause and a fix', () => {
    const rows = documented();
    const problems: string[] = [];
    for (const [key, code] of catalogue) {
      const r = rows.get(code);
      if (!r) {
        problems.push(`${code} (${key}) is missing`);
        continue;
      }
      if (r.length > 1) problems.push(`${code} is listed ${r.length} times`);
      const { cause, fix } = r[0]!;
      if (cause.length < 20) problems.push(`${code}: the cause "${cause}" is too short to say what went wrong`);
      if (fix.length < 15 || EMPTY_FIX.test(fix)) problems.push(`${code}: the fix "${fix}" says nothing to do`);
      if (fix === cause) problems.push(`${code}: the fix repeats the cause`);
    }
    assert.deepEqual(problems, []);
  });

  it('docs name no code that does not exist', () => {
    const stray: string[] = [];
    for (const code of documented().keys()) if (!codes.has(code)) stray.push(`docs/errors.md: ${code}`);
    const docs = [join(REPO, 'README.md'), ...readdirSync(join(REPO, 'docs'), { recursive: true, withFileTypes: true }).filter((e) => e.isFile() && e.name.endsWith('.md')).map((e) => join(e.parentPath, e.name))];
    for (const f of docs) {
      if (f.endsWith(join('docs', 'errors.md'))) continue;
      for (const m of readFileSync(f, 'utf8').matchAll(/\bTRB\d{4}\b/g)) if (!codes.has(m[0])) stray.push(`${relative(REPO, f)}: ${m[0]}`);
    }
    assert.deepEqual(stray, []);
  });
});
