import type { SourceConfig } from '../config/schema.js';
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

/** The position support of `type`, imported lazily like the sources (sources.ts). */
export async function positionSupport(type: SourceConfig['type']): Promise<PositionSupport> {
  switch (type) {
    case 'postgres': {
      const { PgPosition, pgPositionTarget } = await import('../../connectors/postgres/position.js');
      return { parse: (s) => PgPosition.parse(s), zero: PgPosition.ZERO.serialize(), target: pgPositionTarget, forms: 'an LSN such as 0/16B3748' };
    }
    case 'mysql': {
      const { MysqlPosition, mysqlPositionTarget } = await import('../../connectors/mysql/position.js');
      return {
        parse: (s) => MysqlPosition.parse(s),
        zero: MysqlPosition.ZERO.serialize(),
        target: mysqlPositionTarget,
        forms: 'file:pos such as mysql-bin.000003:1234, a GTID set such as 3e11fa47-71ca-11e1-9e33-c80aa9429562:1-57, or a MariaDB GTID position such as 0-1-100',
      };
    }
  }
}
