import { mkdir, open, stat, type FileHandle } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { defineSink, once, type SinkEvent, type WriteContext } from '../../src/sdk/index.js';
import { checkJsonl } from './check.js';

export const JsonlConfig = z.object({
  path: z.string().min(1).describe('File to append envelopes to, one JSON object per line.'),
  fsync: z.boolean().default(true).describe('fsync before each checkpoint: after every batch that completes a transaction (turn off only for throwaway output).'),
});

/**
 * Appends one envelope per line. Exactly-once on its own: the byte offset at each committed
 * position is persisted with the checkpoint, and on open the file is truncated back to it,
 * so lines written after the last checkpoint (and delivered again after a crash) are not
 * kept twice.
 */
export default defineSink({
  type: 'jsonl',
  description: 'Appends each change event as one JSON line; truncates back to the last committed offset on restart, so the file is exactly-once.',
  config: JsonlConfig,
  check: checkJsonl,
  paths: ['path'],
  create(config, ctx) {
    const path = resolve(config.path);
    let fh: FileHandle | undefined;
    let offset = 0;
    /** Bytes written since the last fsync (batches that ended inside a transaction). */
    let unsynced = false;
    let scratch = Buffer.allocUnsafe(1 << 20);
    return {
      async open(checkpoint) {
        await mkdir(dirname(path), { recursive: true });
        fh = await open(path, 'a+');
        const size = (await stat(path)).size;
        const committed = (checkpoint.state as { offset?: number } | undefined)?.offset ?? 0;
        if (size > committed) {
          if (size - committed > 0) ctx.logger.info({ path, size, committed }, 'jsonl: truncating lines written after the last checkpoint');
          await fh.truncate(committed);
          await fh.sync();
        } else if (size < committed) {
          ctx.logger.warn({ path, size, committed }, 'jsonl: file is shorter than its checkpoint (was it rotated or edited?); appending');
        }
        offset = Math.min(size, committed);
      },
      async write(events: readonly SinkEvent[], wctx: WriteContext) {
        // Each line is encoded straight into one reused buffer: no joined string to build,
        // flatten and encode again (that was a leading cost at 100k+ events/s).
        // Envelopes the source made as bytes are copied as they are: no string is ever made.
        let need = 0;
        for (const e of events) need += (e.writeJson ? e.jsonByteLength ?? e.json.length * 3 : e.json.length * 3) + 1;
        if (scratch.length < need) scratch = Buffer.allocUnsafe(Math.max(need, scratch.length * 2));
        let n = 0;
        for (const e of events) {
          n += e.writeJson ? e.writeJson(scratch, n) : scratch.write(e.json, n, 'utf8');
          scratch[n++] = 10;
        }
        // 'a+' appends at the end whatever the position argument says.
        await fh!.write(scratch, 0, n);
        offset += n;
        if (!config.fsync) return;
        // A batch that ends inside a transaction (a snapshot chunk, a big transaction) is
        // followed by no checkpoint: a crash now truncates it away on the next open anyway.
        // Its bytes become durable with the fsync of the batch that completes the
        // transaction, or in checkpoint(), since an fsync covers the whole file.
        if (wctx.commit === null) unsynced = true;
        else {
          await fh!.sync();
          unsynced = false;
        }
      },
      async checkpoint() {
        // The completing batch may have held nothing for this sink (its `tables` filter).
        if (unsynced) {
          await fh!.sync();
          unsynced = false;
        }
        return { offset };
      },
      close: once(async () => {
        const h = fh;
        fh = undefined;
        await h?.close();
      }),
    };
  },
});
