import { z } from 'zod';
import { defineSink, once } from '../../src/sdk/index.js';

/** Discards everything: for benchmarks and for measuring the source alone. */
export default defineSink({
  type: 'null',
  description: 'Discards events (benchmarks).',
  config: z.object({}),
  create() {
    return { async write() {}, close: once(async () => {}) };
  },
});
