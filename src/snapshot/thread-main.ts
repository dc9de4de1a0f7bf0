/**
 * The entry point of a snapshot reader thread (see thread-reader.ts). It builds the source's
 * snapshot support from the {@link ThreadSpec} it is started with and runs readers for the
 * main thread: each reader owns its database connection, writes the watermarks the main
 * thread asks for, and reads chunks into packed rows that are transferred, not copied.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { RowPacker } from './packed-rows.js';
import { serializeError, type ThreadReply, type ThreadRequest } from './thread-protocol.js';
import type { SnapshotReader, SnapshotSupport, ThreadSpec } from './types.js';

const port = parentPort!;
const spec = workerData as ThreadSpec;
const mod = (await import(spec.module)) as Record<string, (o: unknown) => SnapshotSupport>;
const support = mod[spec.factory]!(spec.options);
const readers = new Map<number, SnapshotReader>();

function reader(id: number): SnapshotReader {
  const r = readers.get(id);
  if (!r) throw new Error(`snapshot reader ${id} is not open in this thread`);
  return r;
}

async function handle(m: ThreadRequest): Promise<void> {
  try {
    switch (m.op) {
      case 'open':
        readers.set(m.reader, await support.reader());
        break;
      case 'watermark':
        await reader(m.reader).watermark(m.wid, m.mark);
        break;
      case 'read': {
        const r = reader(m.reader);
        const out = new RowPacker();
        if (r.readInto) await r.readInto(m.table, m.chunk, m.where, out);
        else {
          const rows = await r.read(m.table, m.chunk, m.where);
          for (let i = 0; i < rows.rows.length; i++) out.strings(rows.rows[i]!, rows.keys[i]!);
        }
        const { packed, transfer } = out.finish();
        port.postMessage({ id: m.id, rows: packed } satisfies ThreadReply, transfer);
        return;
      }
      case 'close': {
        const r = readers.get(m.reader);
        readers.delete(m.reader);
        await r?.close();
        break;
      }
    }
    port.postMessage({ id: m.id } satisfies ThreadReply);
  } catch (err) {
    port.postMessage({ id: m.id, error: serializeError(err) } satisfies ThreadReply);
  }
}

// Messages sent while the support's module loaded were queued on the port until now.
port.on('message', (m: ThreadRequest) => void handle(m));
