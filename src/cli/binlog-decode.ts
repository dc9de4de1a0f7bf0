export async function runBinlogDecode(_files: string[]): Promise<void> {
  throw new Error('binlog decode: not wired yet');
}
