import { checkWritableFile, type SinkProblem } from '../../src/sdk/index.js';

/**
 * Preflight: the database file, or the directory it will be created in, is writable. (Whether
 * another process holds DuckDB's write lock is only known when the sink opens it.)
 */
export async function checkDuckdb(config: { path: string }): Promise<SinkProblem[]> {
  const problem = await checkWritableFile(config.path);
  return problem ? [problem] : [];
}
