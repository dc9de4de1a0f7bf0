import { mkdir, open, readFile, rename, type FileHandle } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { z } from 'zod';
import { defineSink, ErrorCodes, once, TributaryError, type SinkEvent, type WriteContext } from '../../src/sdk/index.js';
import { checkJsonl } from './check.js';

export const JsonlConfig = z.object({
  path: z.string().min(1).describe('File to append envelopes to, one JSON object per line.'),
  fsync: z
    .boolean()
    .default(true)
    .describe('fsync before each checkpoint: after every batch that completes a transaction. `false` gives up the exactly-once promise: after an OS crash or power loss the file may lack lines its checkpoint covers, and they are not written again (a process crash alone loses nothing). Turn off only for throwaway output.'),
});

/** The sink's checkpoint state: the committed byte offset, and which file it belongs to. */
interface JsonlState {
  offset?: number;
  /** The file's inode when the offset was taken (absent in checkpoints of older versions). */
  ino?: number;
}

/**
 * Which file this sink created, kept in its state directory and written before its first
 * line: it tells "written by this sink, but not yet checkpointed" (a crash before the first
 * checkpoint: truncate) from "someone else's file" (refuse) when there is no checkpoint.
 */
interface Claim {
  path: string;
  ino: number;
}

/**
 * Appends one envelope per line. Exactly-once on its own: the byte offset at each committed
 * position is persisted with the checkpoint, and on open the file is truncated back to it,
 * so lines written after the last checkpoint (and delivered again after a crash) are not
 * kept twice.
 *
 * It never truncates data it did not write: a non-empty file that neither the checkpoint
 * (same inode) nor the sink's claim (written before its first line) says is its own is
 * refused with TRB3013, for example when a copied config with a new pipeline name points
 * at another pipeline's file, or the state was lost.
 */
export default defineSink({
  type: 'jsonl',
  description: 'Appends each change event as one JSON line; truncates back to the last committed offset on restart, so the file is exactly-once. Refuses (TRB3013) a non-empty file it did not write.',
  config: JsonlConfig,
  check: checkJsonl,
  paths: ['path'],
  create(config, ctx) {
    const path = resolve(config.path);
    const claimPath = join(ctx.stateDir, `jsonl.${encodeURIComponent(ctx.sinkName)}.claim.json`);
    let fh: FileHandle | undefined;
    let offset = 0;
    let ino = 0;
    /** Bytes written since the last fsync (batches that ended inside a transaction). */
    let unsynced = false;
    let scratch = Buffer.allocUnsafe(1 << 20);

    async function readClaim(): Promise<Claim | null> {
      try {
        return JSON.parse(await readFile(claimPath, 'utf8')) as Claim;
      } catch {
        return null;
      }
    }

    async function writeClaim(c: Claim): Promise<void> {
      await mkdir(dirname(claimPath), { recursive: true });
      const tmp = `${claimPath}.tmp`;
      const h = await open(tmp, 'w');
      try {
        await h.writeFile(JSON.stringify(c));
        await h.sync();
      } finally {
        await h.close();
      }
      await rename(tmp, claimPath);
    }

    return {
      async open(checkpoint) {
        if (!config.fsync) ctx.logger.warn({ path }, 'jsonl: fsync is off: after an OS crash or power loss the file may lack lines its checkpoint covers, and they are not written again (not exactly-once)');
        await mkdir(dirname(path), { recursive: true });
        fh = await open(path, 'a+');
        const st = await fh.stat();
        ino = st.ino;
        const state = (checkpoint.position !== null ? (checkpoint.state as JsonlState | undefined) : undefined) ?? undefined;
        const claim = await readClaim();
        const claimed = claim !== null && claim.path === path && claim.ino === st.ino && st.ino !== 0;
        const checkpointed = state?.offset !== undefined && (state.ino === undefined || state.ino === st.ino);
        if (st.size > 0 && !checkpointed && !claimed) {
          await fh.close();
          fh = undefined;
          throw new TributaryError(
            ErrorCodes.SINK_FILE_NOT_OURS,
            `jsonl sink ${ctx.sinkName}: ${path} already holds ${st.size} bytes that this sink did not write (${state?.offset !== undefined ? 'its checkpoint belongs to another file' : `pipeline ${ctx.pipeline} has no checkpoint for it`}); it would have been truncated`,
            { fix: `move ${path} away (or delete it if it is not needed), or point \`path\` at a new file; a copied config needs its own path for each pipeline name` },
          );
        }
        if (!claimed) await writeClaim({ path, ino: st.ino });
        const committed = checkpointed ? state!.offset! : 0;
        if (st.size > committed) {
          ctx.logger.info({ path, size: st.size, committed }, 'jsonl: truncating lines written after the last checkpoint');
          await fh.truncate(committed);
          await fh.sync();
        } else if (st.size < committed) {
          ctx.logger.warn({ path, size: st.size, committed }, 'jsonl: file is shorter than its checkpoint (was it rotated or edited?); appending');
        }
        offset = Math.min(st.size, committed);
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
        return { offset, ino } satisfies JsonlState;
      },
      close: once(async () => {
        const h = fh;
        fh = undefined;
        await h?.close();
      }),
    };
  },
});
