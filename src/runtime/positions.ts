import { sourceConnector } from './source-registry.js';
import type { Position, PositionTarget } from '../core/source.js';

/**
 * What the log tools need of a source's positions, without connecting to its database:
 * parsing the stored strings, the position before everything, and reading a position a
 * user wrote (`--to 0/16B3748`, `--from mysql-bin.000003:1234`).
 */
export interface PositionSupport {
  parse(s: string): Position;
  /** Serialized position below every real one: "nothing is durable yet". */
  zero: string;
  /** A user's position as a test on the log's transactions, or null when it is not one. */
  target(text: string): PositionTarget | null;
  /** The forms `target` reads, for messages. */
  forms: string;
}

/** The position support of a source type, imported lazily through the source registry. */
export async function positionSupport(type: string): Promise<PositionSupport> {
  const c = sourceConnector(type);
  // Unreachable for a validated config: the source union admits only registered types.
  if (!c) throw new Error(`no source connector for type "${type}"`);
  return c.positions();
}
