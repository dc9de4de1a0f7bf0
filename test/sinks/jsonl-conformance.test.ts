import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeSinkConformance } from '../../src/testing/index.js';
import jsonl from '../../sinks/jsonl/index.js';

const dir = mkdtempSync(join(tmpdir(), 'tributary-jsonl-'));
const path = join(dir, 'out.jsonl');

describeSinkConformance({
  definition: jsonl,
  module: new URL('../../sinks/jsonl/index.js', import.meta.url),
  config: { path },
  kind: 'append',
  noPoison: 'every event becomes one JSON line, and a file takes any line',
  async reset() {
    rmSync(path, { force: true });
  },
  async readState() {
    if (!existsSync(path)) return [];
    return readFileSync(path, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  },
});
