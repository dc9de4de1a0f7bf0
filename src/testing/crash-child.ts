/**
 * The conformance kit's crash subject: a child process that loads a sink plugin, runs the
 * steps it is sent over IPC, and is SIGKILLed by the kit in the middle of a write. Not an
 * API: the kit forks it (src/testing/index.ts, "a crash in the middle of a batch").
 *
 * Messages to the parent: `{ kind: 'checkpoint', position, state }` after each committed
 * step, `{ kind: 'writing' }` right before the step the kit kills it in, `{ kind: 'done' }`
 * when every step ran, `{ kind: 'error', message }` on any failure.
 */
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { pino } from 'pino';
import type { ChangeEvent } from '../core/event.js';
import { ErrorCodes, TributaryError } from '../core/errors.js';
import { plainJsonProblem } from '../core/plain-json.js';
import type { SinkCheckpoint, SinkDefinition } from '../sdk/index.js';
import { makeSinkEvent } from './events.js';

/** What the kit sends: the plugin, its config and state dir, and the steps to run. */
export interface CrashPlan {
  module: string;
  config: Record<string, unknown>;
  stateDir: string;
  checkpoint: SinkCheckpoint;
  steps: {
    events: { event: ChangeEvent; txn: number; index: number }[];
    /** The transaction position this step completes, or null inside a transaction. */
    commit: string | null;
    /** Send `writing` before this step's write: the kit kills the process then. */
    kill?: boolean;
  }[];
}

function send(m: unknown): Promise<void> {
  return new Promise((r) => process.send!(m, () => r()));
}

async function run(plan: CrashPlan): Promise<void> {
  const spec = /^[a-z]+:/i.test(plan.module) ? plan.module : pathToFileURL(isAbsolute(plan.module) ? plan.module : resolve(plan.module)).href;
  const def = ((await import(spec)) as { default: SinkDefinition }).default;
  const ac = new AbortController();
  const sink = await def.create(def.config.parse(plan.config) as never, {
    logger: pino({ level: 'silent' }),
    metrics: { inc() {}, set() {} },
    signal: ac.signal,
    pipeline: 'conformance',
    sinkName: 'sut',
    stateDir: plan.stateDir,
  });
  await sink.open?.(plan.checkpoint);
  for (const step of plan.steps) {
    const events = step.events.map((e) => makeSinkEvent(e.event, e.txn, e.index));
    if (step.kill) await send({ kind: 'writing' });
    await sink.write(events, { signal: ac.signal, commit: step.commit });
    if (step.commit !== null) {
      const state = await sink.checkpoint?.(step.commit);
      const problem = state === undefined ? null : plainJsonProblem(state);
      if (problem) throw new TributaryError(ErrorCodes.SINK_STATE_NOT_JSON, `checkpoint() returned state that is not plain JSON: ${problem}`, { fix: 'make checkpoint() return plain objects, arrays, strings, finite numbers, booleans and null' });
      await send({ kind: 'checkpoint', position: step.commit, state });
    }
  }
  await send({ kind: 'done' });
}

process.once('message', (plan: CrashPlan) => {
  run(plan).catch(async (err: unknown) => {
    await send({ kind: 'error', message: err instanceof Error ? err.stack ?? err.message : String(err) });
    process.exit(1);
  });
});
