import { randomBytes } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { backupManifestSchema, type BackupManifest } from '../src/contracts/backup';
import { organizationDataMap } from '../src/platform/data-map';
import { quoteClickHouseString, quotePgIdent } from '../src/platform/quoting';
import { dropSeededOrganization, seedOrganization } from '../src/platform/seed-organization';
import { writeArtifact, type ArtifactWriteOptions } from '../src/storage/backup-store';
import { createFilesystemBackupStore } from '../src/storage/filesystem-backup-store';
import { backupOrganization, restoreOrganization, verifyBackup } from '../src/workflows';
import { scratchNames } from '../src/workflows/verify-backup';
import { hashingTimeoutMs, SCALED_HEARTBEAT_TIMEOUT_MS } from '../src/workflows/shared/scaled-timeouts';
import { failureText, rejectionOf } from './support/failures';
import { openActivities, openWhenScheduled } from './support/history-activities';
import { startTestWorker, uniqueOrgId, type TestWorker } from './support/test-worker';

/**
 * An artifact whose checksums match but whose content is not what its table can load: written by
 * a bug, by another server version, or by anyone with write access to a store that authenticates
 * nothing. Retrying cannot help, so the restore fails at once naming the artifact, and never
 * streams it twenty times into a server that rejects it (each attempt restarting from zero).
 */
// Garbage with a fixed start (one column, one row, a name 2^32-1 bytes long): random bytes alone
// parse as an empty block about once in 200 and fail in one of three parsers the rest of the time
// (ClickHouse 18 answered one of them, its HTTP library's "Poco::Exception. Code: 1000", without
// the code the retry policy reads, and CI retried it for four minutes).
const NATIVE_GARBAGE = Buffer.concat([
  Buffer.from([0x01, 0x01, 0xff, 0xff, 0xff, 0xff, 0x0f]),
  randomBytes(256 * 1024),
]);

describe('restoreOrganization of an artifact that cannot be read back', () => {
  let env: TestWorker;
  const source = uniqueOrgId('rgrb');
  const targets: string[] = [];

  beforeAll(async () => {
    env = await startTestWorker('restore-unreadable');
    await seedOrganization(env.clients, source, { scale: 'small', seed: 'unreadable' });
  });
  afterAll(async () => {
    if (!env) return;
    for (const orgId of [source, ...targets]) {
      await dropSeededOrganization(env.clients, orgId).catch(() => undefined);
      await rm(path.join(env.config.backup.directory, orgId), { recursive: true, force: true });
    }
    await env.shutdown();
  });

  /** A fresh backup of the source whose first ClickHouse data artifact is replaced by `content`, checksums recomputed. */
  async function backupWithReplacedArtifact(
    content: Buffer,
    options: ArtifactWriteOptions,
    replaced: (a: BackupManifest['artifacts'][number]) => boolean = (a) =>
      a.store === 'clickhouse' && a.rows !== null && a.rows > 0,
  ): Promise<string> {
    const summary = await env.client.workflow.execute(backupOrganization, {
      taskQueue: env.taskQueue,
      workflowId: `backup-${source}-${Date.now()}`,
      args: [{ orgId: source, reason: 'unreadable artifact test', verify: false }],
    });
    const manifestPath = path.join(env.config.backup.directory, source, summary.backupId, 'manifest.json');
    const manifest: BackupManifest = backupManifestSchema.parse(JSON.parse(await readFile(manifestPath, 'utf8')));
    const index = manifest.artifacts.findIndex(replaced);
    const artifact = manifest.artifacts[index];
    if (!artifact) throw new Error('the backup has no artifact to replace');
    const store = createFilesystemBackupStore(env.config.backup);
    const ref = { orgId: source, backupId: summary.backupId, path: `${artifact.file}.replaced` };
    const record = await writeArtifact(store, ref, Readable.from([content]), options);
    const folder = path.join(env.config.backup.directory, source, summary.backupId);
    for (const suffix of ['', '.meta.json']) {
      const from = path.join(folder, `${artifact.file}.replaced${suffix}`);
      const sidecar = suffix ? JSON.parse(await readFile(from, 'utf8')) : undefined;
      await writeFile(
        path.join(folder, `${artifact.file}${suffix}`),
        sidecar ? JSON.stringify({ ...sidecar, path: artifact.file }) : await readFile(from),
      );
      await rm(from);
    }
    manifest.artifacts[index] = { ...artifact, ...record, file: artifact.file };
    await writeFile(manifestPath, JSON.stringify(manifest));
    return summary.backupId;
  }

  async function restoreFails(backupId: string): Promise<{ message: string; seconds: number; workflowId: string }> {
    const target = uniqueOrgId('rgrt');
    targets.push(target);
    const started = Date.now();
    const workflowId = `restore-${target}-${Date.now()}`;
    const failure = await rejectionOf(
      env.client.workflow.execute(restoreOrganization, {
        taskQueue: env.taskQueue,
        workflowId,
        args: [{ orgId: source, backupId, targetOrgId: target }],
      }),
    );
    return { message: failureText(failure), seconds: (Date.now() - started) / 1000, workflowId };
  }

  /** The limits the restore gave its artifact check, as the history recorded them. */
  async function artifactCheckLimits(workflowId: string): Promise<{ startToCloseMs: number; heartbeatMs: number }> {
    const history = await env.client.workflow.getHandle(workflowId).fetchHistory();
    const scheduled = (history.events ?? [])
      .map((e) => e.activityTaskScheduledEventAttributes)
      .find((a) => a?.activityType?.name === 'checkBackupArtifacts');
    const ms = (d: { seconds?: unknown; nanos?: number | null } | null | undefined) =>
      Number(d?.seconds ?? 0) * 1000 + Math.round((d?.nanos ?? 0) / 1e6);
    return { startToCloseMs: ms(scheduled?.startToCloseTimeout), heartbeatMs: ms(scheduled?.heartbeatTimeout) };
  }

  it('garbage in place of Native rows (well-formed compression, checksums matching) fails at once, naming the artifact', async () => {
    const backupId = await backupWithReplacedArtifact(NATIVE_GARBAGE, { alreadyCompressed: false });
    const { message, seconds, workflowId } = await restoreFails(backupId);
    // The artifact check is allowed as long as hashing the backup's bytes takes (it was a fixed 10 min).
    const manifest = backupManifestSchema.parse(
      JSON.parse(await readFile(path.join(env.config.backup.directory, source, backupId, 'manifest.json'), 'utf8')),
    );
    const bytes = manifest.artifacts.reduce((sum, a) => sum + a.bytes, 0);
    expect(await artifactCheckLimits(workflowId)).toEqual({
      startToCloseMs: hashingTimeoutMs(bytes),
      heartbeatMs: SCALED_HEARTBEAT_TIMEOUT_MS,
    });
    expect(message).toMatch(
      /cannot load the rows of table \S+ from artifact clickhouse\/\S+\.native: ClickHouse rejected them/,
    );
    // The server echoes the bytes it could not parse; the message keeps printable text only.
    expect(message).not.toContain('\uFFFD');
    // One attempt: the streaming retry policy's 20 attempts with backoff would take minutes.
    expect(seconds).toBeLessThan(60);
  }, 240_000);

  it('bytes that are not the compression the record names fail at once, naming the artifact', async () => {
    // Stored as they come, recorded as gzip: the reader's gunzip fails on the first bytes.
    const backupId = await backupWithReplacedArtifact(randomBytes(256 * 1024), {
      alreadyCompressed: false,
      gzipped: true,
    });
    const { message, seconds } = await restoreFails(backupId);
    expect(message).toMatch(/clickhouse\/[^ ]+\.native/);
    expect(seconds).toBeLessThan(60);
  }, 240_000);

  it('a PostgreSQL archive replaced by garbage (zstd, checksums matching) fails at once, naming the artifact', async () => {
    const backupId = await backupWithReplacedArtifact(
      randomBytes(256 * 1024),
      { alreadyCompressed: true, compressWith: 'zstd' },
      (a) => a.store === 'postgres' && a.compression === 'zstd',
    );
    const { message, seconds } = await restoreFails(backupId);
    expect(message).toMatch(
      /archive postgres\/\S+ cannot be read by pg_restore, so it is not restored; nothing was changed/,
    );
    expect(seconds).toBeLessThan(60);
  }, 240_000);

  it('a verification whose ClickHouse rows cannot be read back fails naming the artifact, with the PostgreSQL restore beside it stopped before the scratch databases are dropped, and none left', async () => {
    // Rows enough that pg_restore is still writing when ClickHouse refuses the garbage.
    const bulk = `${quotePgIdent(organizationDataMap(source).postgres.mainSchema)}.verify_bulk`;
    await env.clients.postgres.query(
      `CREATE TABLE ${bulk} AS SELECT n AS id, md5(n::text) AS label FROM generate_series(1, 1500000) AS n`,
    );
    let backupId: string;
    try {
      backupId = await backupWithReplacedArtifact(NATIVE_GARBAGE, { alreadyCompressed: false });
    } finally {
      await env.clients.postgres.query(`DROP TABLE ${bulk}`);
    }
    const handle = await env.client.workflow.start(verifyBackup, {
      taskQueue: env.taskQueue,
      workflowId: `verify-${backupId}-${Date.now()}`,
      args: [{ backupId }],
    });
    const failure = await rejectionOf(handle.result());
    expect(failureText(failure)).toMatch(/cannot load the rows of table \S+ from artifact clickhouse\/\S+\.native/);
    // The scratch databases are dropped only once both restores have ended (before, pg_restore was
    // still writing and the drop ended its connections).
    const history = await handle.fetchHistory();
    expect(openWhenScheduled(history, 'dropPostgresScratch')).toEqual([]);
    expect(openActivities(history)).toEqual([]);
    const scratch = scratchNames((await handle.describe()).runId);
    const postgres = await env.clients.postgres.query('SELECT datname FROM pg_database WHERE datname = $1', [
      scratch.postgres,
    ]);
    expect(postgres.rows).toEqual([]);
    const clickhouse = await env.clients.clickhouse.query({
      query: `SELECT name FROM system.databases WHERE name = ${quoteClickHouseString(scratch.clickhouse)}`,
      format: 'JSONEachRow',
    });
    expect(await clickhouse.json()).toEqual([]);
  }, 240_000);
});
