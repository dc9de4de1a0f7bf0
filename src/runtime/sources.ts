import type { PipelineConfig } from '../config/schema.js';
import type { Source, SourceContext } from '../core/source.js';

/**
 * Source connectors by `source.type`, imported lazily so a Postgres pipeline never loads
 * the MySQL decoder and the other way round.
 */
export async function createSource(cfg: PipelineConfig, ctx: SourceContext): Promise<Source> {
  const s = cfg.source;
  switch (s.type) {
    case 'postgres': {
      const { PostgresSource } = await import('../../connectors/postgres/source.js');
      return new PostgresSource(s, ctx);
    }
    case 'mysql': {
      const { MysqlSource } = await import('../../connectors/mysql/source.js');
      return new MysqlSource(s, ctx);
    }
  }
}
