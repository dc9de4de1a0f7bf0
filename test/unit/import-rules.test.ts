/**
 * The import rules of docs/architecture.md ("Code map"), checked on every .ts file of the
 * repository: each folder imports only what its row of the map allows, src/ reaches a
 * connector or sink only through its registry, and sinks share through the SDK, never with
 * each other. Imports are read with the TypeScript parser (static, `import type`, `export …
 * from`, `import()` and `import('…').T`), so comments and strings cannot fool it.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';
import ts from 'typescript';
import { REPO } from '../helpers/context.js';

/** One import of one file. Paths are repository-relative, with `/`. */
interface Import {
  from: string;
  to: string;
  line: number;
  /** Erased at build: `import type`, `export type`, every name `type`, or `import('…').T`. */
  typeOnly: boolean;
  /** `import('…')`: loaded when the code runs, not when the module loads. */
  dynamic: boolean;
}

/**
 * What each folder may import besides itself, as in docs/architecture.md. A key is a folder
 * (`src/core`), a folder pattern (`sinks/*`: every sink) or one file, and the most specific key
 * that matches a file applies. An allowed entry is a folder (everything under it) or a file.
 * `*` allows anything.
 */
const MAY_IMPORT: Record<string, readonly string[]> = {
  'src/core': [],
  'src/sdk': ['src/core'],
  'src/log': ['src/core'],
  'src/config': ['src/core', 'src/runtime/sink-registry.ts', 'src/runtime/source-registry.ts'],
  // Connectors import it from their config.ts: it must stay cheap (zod only).
  'src/config/common.ts': [],
  'src/state': ['src/core', 'src/config'],
  'src/snapshot': ['src/core', 'src/state', 'src/runtime'],
  'src/runtime': ['src/core', 'src/config', 'src/state', 'src/snapshot', 'src/sdk', 'src/log', 'src/stream'],
  'src/stream': ['src/core', 'src/config', 'src/log', 'src/sdk'],
  'src/http': ['src/core', 'src/config', 'src/runtime', 'src/snapshot', 'src/state', 'src/log', 'src/stream'],
  'src/cli': ['src/core', 'src/config', 'src/runtime', 'src/snapshot', 'src/state', 'src/http', 'src/sdk', 'src/log', 'src/stream'],
  'src/testing': ['src/core', 'src/sdk', 'src/stream'],
  'src/index.ts': ['src/sdk'],
  // Connectors are written against the source SDK (src/core/source-sdk.ts, run by its
  // SourceRuntime), and use these parts of the engine: the core types, the shared schema
  // pieces, the snapshot contract and helpers, the state store interface, table filters and backoff.
  'connectors/*': [
    'src/core',
    'src/config/common.ts',
    'src/snapshot/types.ts',
    'src/snapshot/envelope.ts',
    'src/snapshot/filter.ts',
    'src/snapshot/visibility.ts',
    'src/state/store.ts',
    'src/runtime/table-filter.ts',
    'src/runtime/retry.ts',
  ],
  // The source registry imports it statically to build the config schema: zod and the shared pieces only.
  'connectors/*/config.ts': ['src/config/common.ts'],
  'sinks/*': ['src/sdk'],
  bench: ['*'],
  test: ['*'],
};

/**
 * The only places src/ reaches a connector or a sink: the registries, which import an
 * implementation with import() when a pipeline needs it (a connector's config.ts, only its
 * schema, statically), and `tributary binlog decode`, the MySQL connector's offline tool.
 */
const PLUGIN_GATES: readonly { file: string; dynamic: RegExp; static?: RegExp }[] = [
  { file: 'src/runtime/sink-registry.ts', dynamic: /^sinks\/[^/]+\/index\.ts$/ },
  { file: 'src/runtime/source-registry.ts', dynamic: /^connectors\/[^/]+\/(source|position)\.ts$/, static: /^connectors\/[^/]+\/config\.ts$/ },
  { file: 'src/cli/binlog-decode.ts', dynamic: /^connectors\/mysql\/index\.ts$/ },
];

/** Known exceptions, each with the reason it is allowed for now. Each must still be needed. */
const EXCEPTIONS: readonly { from: RegExp; to: RegExp; typeOnly?: boolean; why: string }[] = [
  {
    from: /^src\/core\/source\.ts$/,
    to: /^src\/(state\/store|snapshot\/types|snapshot\/visibility)\.ts$/,
    typeOnly: true,
    why: 'the source contract names the state store and snapshot support interfaces, which live beside their implementations; type-only, so nothing is loaded. The source SDK (issue 13 point 1) is where they settle',
  },
];

function tsFiles(): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) {
        if (e.name !== 'node_modules' && e.name !== 'results' && !e.name.startsWith('.')) walk(p);
      } else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(p);
    }
  };
  for (const top of ['src', 'connectors', 'sinks', 'bench', 'test']) walk(join(REPO, top));
  return out;
}

const rel = (abs: string) => relative(REPO, abs).split('\\').join('/');

/** Every relative import of `abs`, resolved to the .ts file it names. Packages are left out. */
function importsOf(abs: string): Import[] {
  const text = readFileSync(abs, 'utf8');
  const sf = ts.createSourceFile(abs, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const out: Import[] = [];
  const add = (spec: ts.Expression | undefined, node: ts.Node, typeOnly: boolean, dynamic: boolean) => {
    if (!spec || !ts.isStringLiteralLike(spec) || !spec.text.startsWith('.')) return;
    const to = rel(resolve(dirname(abs), spec.text)).replace(/\.js$/, '.ts');
    out.push({ from: rel(abs), to, line: sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1, typeOnly, dynamic });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) {
      const c = node.importClause;
      const named = c?.namedBindings && ts.isNamedImports(c.namedBindings) ? c.namedBindings.elements : undefined;
      const allTypes = !!c && !c.name && !!named && named.length > 0 && named.every((e) => e.isTypeOnly);
      add(node.moduleSpecifier, node, !!c && (c.isTypeOnly || allTypes), false);
    } else if (ts.isExportDeclaration(node)) {
      const named = node.exportClause && ts.isNamedExports(node.exportClause) ? node.exportClause.elements : undefined;
      add(node.moduleSpecifier, node, node.isTypeOnly || (!!named && named.length > 0 && named.every((e) => e.isTypeOnly)), false);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      add(node.arguments[0], node, false, true);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
      add(node.argument.literal as ts.Expression, node, true, false);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

/** `src/core`, `src/index.ts`, `connectors/mysql`, `sinks/jsonl`, `bench`, `test`. */
function folderOf(file: string): string {
  const p = file.split('/');
  if (p[0] === 'src') return p.length > 2 ? `src/${p[1]}` : file;
  if (p[0] === 'connectors' || p[0] === 'sinks') return `${p[0]}/${p[1]}`;
  return p[0]!;
}

/** The row of MAY_IMPORT that governs `file`: the file itself, its folder, or its folder pattern. */
function ruleKeyOf(file: string): string | undefined {
  const folder = folderOf(file);
  const generic = folder.replace(/^(connectors|sinks)\/[^/]+$/, '$1/*');
  const fileGeneric = file.replace(/^(connectors|sinks)\/[^/]+\//, '$1/*/');
  return [file, fileGeneric, folder, generic].find((k) => k in MAY_IMPORT);
}

const covers = (entry: string, file: string) => entry === '*' || entry === file || file.startsWith(`${entry}/`);

/** Why `imp` breaks a rule, or null when it is allowed. */
function violation(imp: Import): string | null {
  const fromFolder = folderOf(imp.from);
  const toFolder = folderOf(imp.to);
  if (fromFolder === toFolder) return null;
  const key = ruleKeyOf(imp.from);
  if (!key) return `${fromFolder} has no row in the code map: add it to docs/architecture.md and MAY_IMPORT`;
  const plugin = /^(connectors|sinks)\//.test(imp.to);
  if (imp.from.startsWith('src/') && plugin) {
    const gate = PLUGIN_GATES.find((g) => g.file === imp.from);
    if (gate && (imp.dynamic ? gate.dynamic : gate.static)?.test(imp.to)) return null;
    return `src/ reaches ${imp.to} outside the registries (${PLUGIN_GATES.map((g) => g.file).join(', ')}), or statically`;
  }
  if (MAY_IMPORT[key]!.some((e) => covers(e, imp.to))) return null;
  if (/^sinks\//.test(imp.from) && /^sinks\//.test(imp.to)) return 'a sink imports another sink: share through src/sdk';
  if (/^connectors\//.test(imp.from) && plugin) return 'a connector imports another plugin';
  return `${key} may import ${MAY_IMPORT[key]!.length ? MAY_IMPORT[key]!.join(', ') : 'nothing in the repository'}`;
}

describe('import rules (docs/architecture.md, "Code map")', () => {
  const imports = tsFiles().flatMap(importsOf);
  const exceptionUsed = new Set<number>();
  const broken: string[] = [];
  for (const imp of imports) {
    const why = violation(imp);
    if (!why) continue;
    const i = EXCEPTIONS.findIndex((x) => x.from.test(imp.from) && x.to.test(imp.to) && (!x.typeOnly || imp.typeOnly));
    if (i >= 0) exceptionUsed.add(i);
    else broken.push(`${imp.from}:${imp.line} imports ${imp.to}${imp.typeOnly ? ' (type)' : imp.dynamic ? ' (import())' : ''}: ${why}`);
  }

  it('reads the imports of every .ts file', () => {
    assert.ok(imports.length > 500, `${imports.length} imports found`);
    // The parser sees all the forms the rules depend on.
    assert.ok(imports.some((i) => i.from === 'src/runtime/sink-registry.ts' && i.dynamic && i.to === 'sinks/jsonl/index.ts'), 'a dynamic import()');
    assert.ok(imports.some((i) => i.from === 'src/sdk/index.ts' && i.typeOnly && i.to === 'src/core/event.ts'), 'an export type … from');
  });

  it('every folder imports only what the map allows', () => {
    assert.deepEqual(broken, []);
  });

  it('every exception is still needed', () => {
    const stale = EXCEPTIONS.filter((_, i) => !exceptionUsed.has(i)).map((x) => `${x.from} -> ${x.to}: ${x.why}`);
    assert.deepEqual(stale, [], 'remove exceptions that no import needs any more');
  });

  it('the map in docs/architecture.md names every folder the rules know', () => {
    const doc = readFileSync(join(REPO, 'docs', 'architecture.md'), 'utf8');
    const missing = Object.keys(MAY_IMPORT)
      .filter((k) => !k.endsWith('.ts'))
      .filter((k) => !doc.includes('`' + k.replace('/*', '/<name>') + '/`') && !doc.includes('`' + k + '/`'));
    assert.deepEqual(missing, []);
  });

  it('would catch a sink that imports the engine or another sink, and src/ importing a sink', () => {
    assert.match(violation({ from: 'sinks/redis/index.ts', to: 'src/runtime/pipeline.ts', line: 1, typeOnly: false, dynamic: false }) ?? '', /sinks\/\* may import src\/sdk/);
    assert.match(violation({ from: 'sinks/redis/index.ts', to: 'sinks/jsonl/index.ts', line: 1, typeOnly: false, dynamic: false }) ?? '', /another sink/);
    assert.match(violation({ from: 'src/runtime/pipeline.ts', to: 'sinks/jsonl/index.ts', line: 1, typeOnly: false, dynamic: true }) ?? '', /outside the registries/);
    assert.match(violation({ from: 'src/runtime/sink-registry.ts', to: 'sinks/jsonl/index.ts', line: 1, typeOnly: false, dynamic: false }) ?? '', /statically/);
    assert.match(violation({ from: 'connectors/mysql/source.ts', to: 'sinks/jsonl/index.ts', line: 1, typeOnly: false, dynamic: false }) ?? '', /another plugin/);
    assert.match(violation({ from: 'src/sdk/index.ts', to: 'src/runtime/retry.ts', line: 1, typeOnly: false, dynamic: false }) ?? '', /src\/sdk may import src\/core/);
    assert.equal(violation({ from: 'src/runtime/source-registry.ts', to: 'connectors/mysql/config.ts', line: 1, typeOnly: false, dynamic: false }), null);
  });
});
