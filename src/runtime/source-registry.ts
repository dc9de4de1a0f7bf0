import { z } from 'zod';
import type { Source, SourceContext } from '../core/source.js';
import type { PositionSupport } from './positions.js';
import { PostgresSourceConfig } from '../../connectors/postgres/config.js';
import { MysqlSourceConfig } from '../../connectors/mysql/config.js';

/**
 * One source connector as the engine sees it: the `source.type` it answers to, the schema of
 * its `source:` block, and a lazy import of its implementation.
 */
export interface SourceConnector<C extends z.ZodObject = z.ZodObject> {
  /** The `source.type` value. */
  readonly type: string;
  /**
   * The connector's own schema (connectors/<name>/config.ts), built from the shared pieces in
   * src/config/common.ts. It validates the block, types the connector's constructor, and
   * gives the connector's section of docs/configuration.md.
   */
  readonly config: C;
  /** Heading of the connector's section in docs/configuration.md, e.g. `Postgres source`. */
  readonly title: string;
  /** A sentence under the heading, when the type name does not say everything. */
  readonly note?: string;
  /**
   * Imports the implementation. Lazy on purpose: a Postgres pipeline never loads the MySQL
   * decoder and the other way round. The schema above is imported eagerly because it is needed
   * to validate a file and is small (zod and src/config/common.ts only).
   */
  load(): Promise<(config: z.output<C>, ctx: SourceContext) => Source>;
  /**
   * Imports the connector's positions alone (its position.ts), for the log tools: reading
   * stored positions and the ones a user writes, without connecting to the database.
   */
  positions(): Promise<PositionSupport>;
}

const connector = <C extends z.ZodObject>(c: SourceConnector<C>): SourceConnector<C> => c;

/*
 * The built-in connectors, registered explicitly (STYLE.md, "Register explicitly"): adding one
 * is its folder under connectors/, a config.ts, and an entry here. Nothing scans directories.
 */
const postgres = connector({
  type: 'postgres',
  config: PostgresSourceConfig,
  title: 'Postgres source',
  load: async () => {
    const { PostgresSource } = await import('../../connectors/postgres/source.js');
    return (config, ctx) => new PostgresSource(config, ctx);
  },
  positions: async () => {
    const { PgPosition, pgPositionTarget } = await import('../../connectors/postgres/position.js');
    return { parse: (s) => PgPosition.parse(s), zero: PgPosition.ZERO.serialize(), target: pgPositionTarget, forms: 'an LSN such as 0/16B3748' };
  },
});

const mysql = connector({
  type: 'mysql',
  config: MysqlSourceConfig,
  title: 'MySQL source',
  note: 'Serves MySQL and MariaDB.',
  load: async () => {
    const { MysqlSource } = await import('../../connectors/mysql/source.js');
    return (config, ctx) => new MysqlSource(config, ctx);
  },
  positions: async () => {
    const { MysqlPosition, mysqlPositionTarget } = await import('../../connectors/mysql/position.js');
    return {
      parse: (s) => MysqlPosition.parse(s),
      zero: MysqlPosition.ZERO.serialize(),
      target: mysqlPositionTarget,
      forms: 'file:pos such as mysql-bin.000003:1234, a GTID set such as 3e11fa47-71ca-11e1-9e33-c80aa9429562:1-57, or a MariaDB GTID position such as 0-1-100',
    };
  },
});

/** The built-in connectors in the order the docs list them. */
const connectors: readonly SourceConnector[] = [postgres, mysql] as readonly SourceConnector[];

/** The `source:` block: one of the connectors' schemas, chosen by `type`. */
export const SourceConfig = z.discriminatedUnion('type', [postgres.config, mysql.config]);
export type SourceConfig = z.infer<typeof SourceConfig>;

/** The known `source.type` values, sorted (for messages). */
export function sourceTypes(): string[] {
  return connectors.map((c) => c.type).sort();
}

/** Every built-in connector, in the order of the docs. */
export function sourceConnectors(): readonly SourceConnector[] {
  return connectors;
}

/** The connector for `type`, or undefined when no connector has that name. */
export function sourceConnector(type: string): SourceConnector | undefined {
  return connectors.find((c) => c.type === type);
}

/**
 * A new source for a pipeline's validated `source:` block (each attempt of a pipeline makes
 * a new one, with new connections).
 */
export async function createSource(cfg: { source: SourceConfig }, ctx: SourceContext): Promise<Source> {
  const c = sourceConnector(cfg.source.type);
  // Unreachable for a validated config: the union above admits only registered types.
  if (!c) throw new Error(`no source connector for type "${cfg.source.type}"`);
  const create = await c.load();
  return create(cfg.source, ctx);
}
