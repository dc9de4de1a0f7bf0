import { ConfigError, ErrorCodes, TributaryError } from '../core/errors.js';

/**
 * `tributary binlog decode FILE...`: decodes binlog files offline to change-event JSONL on
 * stdout. Files without column names (binlog_row_metadata below FULL) get `_col0`, `_col1`...
 * A truncated or corrupt file throws a coded error that `main()` prints as exactly one line
 * (`error: TRB2106 ... (fix: ...)`) before exiting 1; lines already written stay written.
 */
export async function runBinlogDecode(files: string[]): Promise<void> {
  if (!files.length) {
    throw new ConfigError(ErrorCodes.USAGE, 'binlog decode needs at least one binlog file', { fix: 'tributary binlog decode mariadb-bin.000001 [more files in order]' });
  }
  try {
    // The MySQL connector's offline decoder, loaded only for this command (src/ reaches a
    // connector through import() only: docs/architecture.md, "Code map").
    const { decodeBinlogFilesToJsonl } = await import('../../connectors/mysql/index.js');
    await decodeBinlogFilesToJsonl(files, process.stdout, { fallbackColumnNames: true, partialJson: 'diff' });
  } catch (err) {
    // One line on stderr, for scripts: fold the fix into the message.
    if (err instanceof TributaryError) {
      throw new TributaryError(err.code, `${err.message}${err.fix ? ` (fix: ${err.fix})` : ''}`.replace(/\s*\n\s*/g, ' '), { cause: err });
    }
    const e = err as NodeJS.ErrnoException;
    if (e && (e.code === 'ENOENT' || e.code === 'EACCES' || e.code === 'EISDIR')) {
      throw new TributaryError(ErrorCodes.MYSQL_BINLOG_FILE, `cannot read ${e.path ?? 'file'}: ${e.code}`, { cause: err });
    }
    throw new TributaryError(ErrorCodes.MYSQL_DECODE, `binlog decode failed: ${(err as Error)?.message ?? String(err)}`.replace(/\s*\n\s*/g, ' '), { cause: err });
  }
}
