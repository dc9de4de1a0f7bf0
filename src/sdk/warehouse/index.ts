/**
 * `tributary/sdk/warehouse`: helpers for sinks that write change events into SQL tables,
 * the ones the built-in postgres and duckdb sinks are made of. Nothing here talks to a
 * database; a sink brings its client and its {@link WarehouseDialect}.
 *
 * - **Planning** (`planMirror`, `groupByTable`): a batch becomes, per table, the last change
 *   of each key (upsert or delete, a key change deleting the old key, unchanged TOAST columns
 *   carried over), cut at truncates; a keyless event is a poison event.
 * - **Types** (`kindOf`, `mergeKind`, `inferKinds`): the column kind of JSON values.
 * - **Tables** (`TableCache`): target table metadata and the DDL that creates and widens them.
 * - **Statements** (`bySignature`, `chunks`, `rowJson`) and **quoting** (`quoteIdent`,
 *   `quoteLiteral`, `quoteBackslashLiteral`).
 * - **Config** (`warehouseFields`): the common keys of a warehouse sink's schema.
 *
 * docs/sink-sdk.md ("Warehouse sinks") shows a plugin built from them.
 */
export { planMirror, splitChanges, groupByTable, keyIdOf, type KeyedChange, type TableChanges, type Segment } from './plan.js';
export { kindOf, mergeKind, inferKinds, type ValueKind } from './infer.js';
export { TableCache, FENCE_COL, type TargetTable, type WarehouseDialect, type WarehouseMode, type WarehouseWriterOptions } from './tables.js';
export { bySignature, chunks, rowJson } from './rows.js';
export { quoteIdent, quoteLiteral, quoteBackslashLiteral } from './quote.js';
export { warehouseFields } from './config.js';
