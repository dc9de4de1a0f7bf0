/**
 * MySQL/MariaDB binlog decoding: the public surface used by the live source and the CLI.
 *
 * - {@link BinlogDecoder}: feed raw events (from a file or a replication stream), get
 *   change events and transaction commits with exact positions.
 * - {@link MysqlPosition}: the `{file, pos, gtid}` position value object.
 * - {@link decodeBinlogFile} / {@link decodeBinlogFiles}: offline file decoding.
 * - {@link decodeBinlogFilesToJsonl}: `tributary binlog decode FILE...`.
 */
export { BinlogDecoder, type BinlogDecoderOptions, type DdlStatement, type MysqlSourceItem } from './decoder.js';
export { MysqlPosition, fileSequence } from './position.js';
export {
  BINLOG_MAGIC, decodeBinlogFile, decodeBinlogFiles, decodeBinlogFilesToJsonl,
  type DecodeFileOptions, type DecodeStats, type DecodeToJsonlOptions,
} from './file.js';
export type { TableSchemaHint } from './row-decoder.js';
export type { TableMap } from './table-map.js';
export { EventType, HEADER_LEN } from './event-header.js';
export { MysqlGtidSet, MariadbGtidState } from './gtid.js';
