import { createClient, type ClickHouseClient } from '@clickhouse/client';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { loadClickHouseObjects } from '../src/activities/clickhouse/restore';
import { loadConfig } from '../src/config';
import { quoteClickHouseIdent } from '../src/platform/quoting';
import { writeArtifact, type ArtifactRef } from '../src/storage/backup-store';
import { createFilesystemBackupStore, type FilesystemBackupStore } from '../src/storage/filesystem-backup-store';
import { uniqueOrgId } from './support/test-worker';

/**
 * Restores read artifacts in the form they are stored in where the consumer can decompress them
 * itself (issue 17: the worker's CPU is the third user of two cores during a verification):
 * ClickHouse gets a gzip Native artifact as the INSERT's gzip body, and `pg_restore --jobs` gets its
 * file from `zstd -d` writing it directly. Both still name a changed artifact as changed.
 */
describe('restoring artifacts without decompressing them in the worker', () => {
  const config = loadConfig();
  let dir: string;
  let store: FilesystemBackupStore;
  let clickhouse: ClickHouseClient;
  const backup = { orgId: uniqueOrgId('cmpr'), backupId: `b${Date.now()}` };
  const source = `eloquent_test_cmpr_src_${backup.backupId}`;
  const databases = [source];

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'compressed-restore-'));
    store = createFilesystemBackupStore({ ...config.backup, directory: dir });
    clickhouse = createClient({ url: config.clickhouse.url });
    await clickhouse.command({ query: `CREATE DATABASE ${quoteClickHouseIdent(source)}` });
    await clickhouse.command({
      query: `CREATE TABLE ${quoteClickHouseIdent(source)}.events (id UInt64, kind String, note String) ENGINE = MergeTree ORDER BY id`,
    });
    await clickhouse.command({
      query: `INSERT INTO ${quoteClickHouseIdent(source)}.events SELECT number, concat('kind-', toString(number % 7)), concat('filler filler filler filler filler filler filler filler ', toString(number % 100)) FROM system.numbers LIMIT 200000`,
    });
  });
  afterAll(async () => {
    for (const db of databases)
      await clickhouse.command({ query: `DROP DATABASE IF EXISTS ${quoteClickHouseIdent(db)}` });
    await clickhouse.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** The source table's rows as the backup stores them: Native, gzipped by the server. */
  async function storeEventsArtifact(file: string): Promise<{ rawBytes: number; bytes: number }> {
    const url = new URL(config.clickhouse.url);
    url.searchParams.set('query', `SELECT * FROM ${quoteClickHouseIdent(source)}.events FORMAT Native`);
    url.searchParams.set('enable_http_compression', '1');
    const answer = await fetch(url, { headers: { 'Accept-Encoding': 'gzip' } });
    expect(answer.headers.get('content-encoding')).toBe('gzip');
    // fetch decompresses; the artifact is written from the raw bytes, compressed again by the store.
    const raw = Buffer.from(await answer.arrayBuffer());
    const record = await writeArtifact(store, { ...backup, path: file }, Readable.from([raw]), {
      alreadyCompressed: false,
    });
    expect(record.compression).toBe('gzip');
    return { rawBytes: raw.length, bytes: record.bytes };
  }

  async function loadInto(client: ClickHouseClient, file: string): Promise<string> {
    const target = `eloquent_test_cmpr_dst_${Date.now()}`;
    databases.push(target);
    await clickhouse.command({ query: `CREATE DATABASE ${quoteClickHouseIdent(target)}` });
    const create = await clickhouse.query({
      query: `SHOW CREATE TABLE ${quoteClickHouseIdent(source)}.events`,
      format: 'TabSeparatedRaw',
    });
    await loadClickHouseObjects(
      { clickhouse: client, store },
      backup,
      {
        ddl: [],
        statements: new Map([['events', (await create.text()).trim()]]),
        data: [{ object: 'events', file, rows: 200000 }],
      },
      { sourceDatabase: source, database: target, orgId: backup.orgId },
      { table: '' },
      new AbortController().signal,
    );
    return target;
  }

  const checksum = (db: string) =>
    clickhouse
      .query({
        query: `SELECT count() AS n, sum(cityHash64(id, kind, note)) AS h FROM ${quoteClickHouseIdent(db)}.events`,
        format: 'JSONEachRow',
      })
      .then((r) => r.json());

  it('ClickHouse receives the stored gzip bytes, not the rows inflated by the worker, and loads every row', async () => {
    const file = 'clickhouse/events.native';
    const sizes = await storeEventsArtifact(file);
    // What the client sends the server, counted on the wire.
    const upstream = new URL(config.clickhouse.url);
    let sent = 0;
    const counter = net.createServer((socket) => {
      const server = net.connect(Number(upstream.port || 8123), upstream.hostname);
      socket.on('data', (chunk: Buffer) => (sent += chunk.length));
      socket.pipe(server).pipe(socket);
      socket.on('error', () => server.destroy());
      server.on('error', () => socket.destroy());
    });
    await new Promise<void>((resolve) => counter.listen(0, '127.0.0.1', resolve));
    const port = (counter.address() as net.AddressInfo).port;
    const counted = createClient({ url: `http://127.0.0.1:${port}` });
    try {
      const target = await loadInto(counted, file);
      expect(await checksum(target)).toEqual(await checksum(source));
    } finally {
      await counted.close();
      await new Promise((resolve) => counter.close(resolve));
    }
    expect(sizes.rawBytes).toBeGreaterThan(sizes.bytes * 5);
    // The stored bytes and the requests' heads; the inflated rows would be five times more.
    expect(sent).toBeGreaterThan(sizes.bytes);
    expect(sent).toBeLessThan(sizes.bytes + 64 * 1024);
  });

  it('a gzip artifact changed in the store fails as a changed artifact, not as rows ClickHouse rejected', async () => {
    const file = 'clickhouse/events-changed.native';
    const sizes = await storeEventsArtifact(file);
    const stored = path.join(dir, backup.orgId, backup.backupId, file);
    const bytes = await readFile(stored);
    // The middle of the deflate stream: the server's inflate fails long before the end is hashed.
    bytes.fill(0xa5, Math.floor(sizes.bytes / 3), Math.floor(sizes.bytes / 3) + 4096);
    await writeFile(stored, bytes);
    await expect(loadInto(clickhouse, file)).rejects.toMatchObject({
      type: 'ChecksumMismatch',
      message: expect.stringMatching(new RegExp(`artifact ${backup.orgId}/${backup.backupId}/${file} hashes to`)),
    });
  });

  describe('copyArtifactToFile', () => {
    const original = Buffer.concat([randomBytes(300_000), Buffer.alloc(2_000_000, 'pg_dump archive ')]);
    const ref = (name: string): ArtifactRef => ({ ...backup, path: `postgres/${name}` });

    it.each([
      ['zstd', { alreadyCompressed: false, compressWith: 'zstd' as const }],
      ['gzip', { alreadyCompressed: false }],
      ['none', { alreadyCompressed: true }],
    ])('writes the original bytes of a %s artifact into the file', async (compression, options) => {
      const record = await writeArtifact(store, ref(`copy-${compression}.dump`), Readable.from([original]), options);
      expect(record.compression).toBe(compression);
      const file = path.join(dir, `copied-${compression}.dump`);
      await store.copyArtifactToFile(ref(`copy-${compression}.dump`), file);
      expect((await readFile(file)).equals(original)).toBe(true);
    });

    it('a zstd artifact changed in the store, or one that is not zstd under a matching checksum, is named', async () => {
      await writeArtifact(store, ref('changed.dump'), Readable.from([original]), {
        alreadyCompressed: false,
        compressWith: 'zstd',
      });
      const stored = path.join(dir, backup.orgId, backup.backupId, 'postgres/changed.dump');
      const bytes = await readFile(stored);
      bytes[bytes.length - 10] = (bytes[bytes.length - 10] ?? 0) ^ 0xff;
      await writeFile(stored, bytes);
      await expect(store.copyArtifactToFile(ref('changed.dump'), path.join(dir, 'changed.dump'))).rejects.toMatchObject(
        {
          type: 'ChecksumMismatch',
          message: expect.stringContaining(
            `artifact ${backup.orgId}/${backup.backupId}/postgres/changed.dump hashes to`,
          ),
        },
      );

      // Bytes that are not zstd at all, recorded as zstd with their true checksum: zstd refuses them.
      await writeArtifact(store, ref('not-zstd.dump'), Readable.from([original]), {
        alreadyCompressed: false,
        compressWith: 'zstd',
      });
      const notZstd = path.join(dir, backup.orgId, backup.backupId, 'postgres/not-zstd.dump');
      const sidecarFile = `${notZstd}.meta.json`;
      await writeFile(notZstd, original.subarray(0, (await readFile(notZstd)).length));
      const sidecar = JSON.parse(await readFile(sidecarFile, 'utf8')) as { sha256: string };
      sidecar.sha256 = createHash('sha256')
        .update(await readFile(notZstd))
        .digest('hex');
      await writeFile(sidecarFile, JSON.stringify(sidecar));
      await expect(
        store.copyArtifactToFile(ref('not-zstd.dump'), path.join(dir, 'not-zstd.dump')),
      ).rejects.toMatchObject({
        type: 'ChecksumMismatch',
        message: expect.stringContaining('is not a valid zstd stream'),
      });
    });
  });
});
