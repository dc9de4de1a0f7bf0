import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config/load.js';
import { REPO } from '../helpers/context.js';

describe('deploy/examples', () => {
  const dir = join(REPO, 'deploy', 'examples');
  for (const f of readdirSync(dir).filter((x) => x.endsWith('.yaml'))) {
    it(`${f} is a valid config`, async () => {
      const cfg = await loadConfig([join(dir, f)], {});
      assert.ok(cfg.pipelines.length >= 1);
      assert.ok(cfg.pipelines.every((p) => p.sinks.length >= 1));
    });
  }
});
