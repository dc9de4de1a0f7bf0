import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { renderConfigReference } from '../../src/config/docs.js';
import { REPO } from '../helpers/context.js';

describe('docs match the code', () => {
  it('docs/configuration.md is what the schemas generate (npm run docs)', async () => {
    const committed = readFileSync(join(REPO, 'docs', 'configuration.md'), 'utf8');
    assert.equal(committed, await renderConfigReference(), 'regenerate with `npm run docs`');
  });

  // Error codes: test/unit/error-catalogue.test.ts.
});
