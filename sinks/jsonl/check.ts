import { checkWritableFile, type SinkProblem } from '../../src/sdk/index.js';

/** Preflight: the file, or the directory it will be created in, is writable. */
export async function checkJsonl(config: { path: string }): Promise<SinkProblem[]> {
  const problem = await checkWritableFile(config.path);
  return problem ? [problem] : [];
}
