import { execFileSync } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { runToolInto } from '../src/activities/postgres/tools';
import { loadConfig } from '../src/config';

/**
 * `runToolInto(…, { zstd: true })`, as backupPostgres dumps the schemas archive: zstd reads
 * pg_dump's pipe itself, so the worker receives only the compressed stream (issue 17: a 1.5 GB
 * archive passed through the worker's event loop into zstd cost it a core-second and more beside
 * the dump). Real pg_dump, real zstd.
 */
describe('pg_dump piped straight into zstd', () => {
  const url = loadConfig().postgres.url;

  async function dumpThroughZstd(args: string[]): Promise<{ received: Buffer; reported: number }> {
    const sink = new PassThrough();
    const chunks: Buffer[] = [];
    sink.on('data', (c: Buffer) => chunks.push(c));
    let reported = 0;
    await runToolInto(
      'pg_dump',
      args,
      sink,
      new AbortController().signal,
      (n) => (reported = n),
      {
        orgId: 'zstd_pipe_test',
        object: 'catalog',
      },
      { zstd: true },
    );
    return { received: Buffer.concat(chunks), reported };
  }

  it('the worker gets the zstd stream of the whole archive, and only that', async () => {
    const { received, reported } = await dumpThroughZstd([
      '--format=custom',
      '--compress=0',
      '--schema-only',
      `--dbname=${url}`,
    ]);
    // A zstd frame (magic 28 b5 2f fd) that decompresses to a whole custom-format archive.
    expect(received.subarray(0, 4).toString('hex')).toBe('28b52ffd');
    const archive = execFileSync('zstd', ['-d', '-q', '-c'], { input: received });
    expect(archive.subarray(0, 5).toString()).toBe('PGDMP');
    expect(reported).toBe(received.length);
    const listed = execFileSync('pg_restore', ['--list'], { input: archive }).toString();
    expect(listed).toMatch(/; Archive created at/);
  });

  it("a pg_dump that fails is reported in pg_dump's words, not as a short zstd stream", async () => {
    await expect(
      dumpThroughZstd([
        '--format=custom',
        '--compress=0',
        '--schema="no_such_schema_anywhere"',
        '--strict-names',
        `--dbname=${url}`,
      ]),
    ).rejects.toThrow(/no matching schemas were found/);
  });
});
