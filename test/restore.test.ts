import { rm } from 'node:fs/promises';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { WorkflowFailedError } from '@temporalio/client';
import { backupManifestSchema } from '../src/contracts/backup';
import { organizationDataMap } from '../src/platform/data-map';
import { fingerprintOrganization, type OrganizationFingerprint } from '../src/platform/fingerprint';
import { compareObjectFingerprints } from '../src/platform/fingerprint-compare';
import { clearOrganizationPostgres } from '../src/activities/postgres/purge';
import { dropSeededOrganization, seedOrganization } from '../src/platform/seed-organization';
import { writeArtifact } from '../src/storage/backup-store';
import { createFilesystemBackupStore } from '../src/storage/filesystem-backup-store';
import { backupOrganization, restoreOrganization } from '../src/workflows';
import { failureText, rejectionOf } from './support/failures';
import { startTestWorker, uniqueOrgId, type TestWorker } from './support/test-worker';

/** Only the durable stores: restore brings back PostgreSQL and ClickHouse, never the queue or Redis. */
const durable = (f: OrganizationFingerprint) =>
  f.objects.filter((o) => o.store === 'postgres' || o.store === 'clickhouse');

describe('restoreOrganization', () => {
  let env: TestWorker;
  const source = uniqueOrgId('rsrc');
  const clone = uniqueOrgId('rcln');
  const broken = uniqueOrgId('rbrk');
  const created = [source, clone, broken];

  beforeAll(async () => {
    env = await startTestWorker('restore');
    await seedOrganization(env.clients, source, { scale: 'small', seed: 'restore' });
  });
  afterAll(async () => {
    if (env) {
      for (const orgId of created) {
        await dropSeededOrganization(env.clients, orgId).catch(() => undefined);
        await rm(path.join(env.config.backup.directory, orgId), { recursive: true, force: true });
      }
      await env.shutdown();
    }
  });

  const backUp = async (orgId: string) =>
    env.client.workflow.execute(backupOrganization, {
      taskQueue: env.taskQueue,
      workflowId: `backup-${orgId}-${Date.now()}`,
      args: [{ orgId, reason: 'restore test', verify: false }],
    });
  const restore = (args: Parameters<typeof restoreOrganization>[0]) =>
    env.client.workflow.execute(restoreOrganization, {
      taskQueue: env.taskQueue,
      workflowId: `restore-${args.targetOrgId ?? args.orgId ?? 'x'}-${Date.now()}`,
      args: [args],
    });

  it('backup, drop the organization by hand in every store, restore: the fingerprint equals the manifest', async () => {
    const backup = await backUp(source);
    await dropSeededOrganization(env.clients, source);
    // Gone: shared tables still answer, with no rows of the organization.
    expect(
      (await fingerprintOrganization(env.clients, source, ['postgres', 'clickhouse'])).objects.filter(
        (o) => o.rows > 0,
      ),
    ).toEqual([]);
    const result = await restore({ backupId: backup.backupId, orgId: source });
    expect(result.comparisons.length).toBeGreaterThan(8);
    expect(result.comparisons.every((c) => c.equal)).toBe(true);
    const manifest = backupManifestSchema.parse(
      JSON.parse(
        (
          await import('node:fs/promises').then((fs) =>
            fs.readFile(path.join(env.config.backup.directory, source, backup.backupId, 'manifest.json')),
          )
        ).toString(),
      ),
    );
    const now = await fingerprintOrganization(env.clients, source, ['postgres', 'clickhouse']);
    expect(compareObjectFingerprints(manifest.fingerprint.objects, durable(now)).every((c) => c.equal)).toBe(true);
  });

  it('into-empty over an existing organization is refused before any change, listing what exists', async () => {
    const backup = await backUp(source);
    const before = await fingerprintOrganization(env.clients, source);
    const failure = await rejectionOf(restore({ backupId: backup.backupId, orgId: source, mode: 'into-empty' }));
    expect(failure).toBeInstanceOf(WorkflowFailedError);
    expect(failureText(failure)).toMatch(/is not empty, nothing was changed[\s\S]*postgres schema org_/);
    const after = await fingerprintOrganization(env.clients, source);
    expect(compareObjectFingerprints(before.objects, after.objects).every((c) => c.equal)).toBe(true);
  });

  it('a clone into a new id carries the new id everywhere, equals the source once ids are mapped, and leaves the source untouched', async () => {
    const backup = await backUp(source);
    const sourceBefore = await fingerprintOrganization(env.clients, source);
    const result = await restore({ backupId: backup.backupId, orgId: source, targetOrgId: clone });
    expect(result.targetOrgId).toBe(clone);
    const cloneMap = organizationDataMap(clone);
    const schemas = await env.clients.postgres.query<{ nspname: string }>(
      'SELECT nspname FROM pg_namespace WHERE nspname = ANY($1)',
      [cloneMap.postgres.schemas],
    );
    expect(schemas.rows.map((r) => r.nspname).sort()).toEqual([...cloneMap.postgres.schemas].sort());
    const users = await env.clients.postgres.query('SELECT count(*)::int AS n FROM public.users WHERE org_id = $1', [
      clone,
    ]);
    expect(users.rows[0].n).toBeGreaterThan(0);
    const cloneFingerprint = await fingerprintOrganization(env.clients, clone, ['postgres', 'clickhouse']);
    expect(compareObjectFingerprints(durable(sourceBefore), cloneFingerprint.objects).every((c) => c.equal)).toBe(true);
    const sourceAfter = await fingerprintOrganization(env.clients, source);
    expect(compareObjectFingerprints(sourceBefore.objects, sourceAfter.objects).every((c) => c.equal)).toBe(true);
  });

  it('a restore that fails halfway (a ClickHouse table this server cannot create) leaves the target exactly as before', async () => {
    await seedOrganization(env.clients, broken, { scale: 'small', seed: 'broken' });
    const backup = await backUp(broken);
    // Make the backup look like one from a modern server: a Map column, which ClickHouse 18 lacks.
    const store = createFilesystemBackupStore(env.config.backup);
    const manifestPath = path.join(env.config.backup.directory, broken, backup.backupId, 'manifest.json');
    const fs = await import('node:fs/promises');
    const manifest = backupManifestSchema.parse(JSON.parse(await fs.readFile(manifestPath, 'utf8')));
    const ddlFile = 'clickhouse/zz_modern.sql';
    const record = await writeArtifact(
      store,
      { orgId: broken, backupId: backup.backupId, path: ddlFile },
      Readable.from([
        Buffer.from(
          `CREATE TABLE org_${broken}.zz_modern (id UInt64, attributes Map(String, String)) ENGINE = MergeTree ORDER BY id\n`,
        ),
      ]),
      { alreadyCompressed: false },
    );
    manifest.artifacts.push({
      store: 'clickhouse',
      object: 'clickhouse-ddl:zz_modern',
      file: ddlFile,
      ...record,
      rows: null,
    });
    await fs.writeFile(manifestPath, JSON.stringify(manifest));

    // Replace mode over the live organization, after changing it so a silent no-op would show.
    await env.clients.postgres.query(
      `UPDATE org_${broken}.entity_definitions SET name = name || ' (edited)' WHERE ctid IN (SELECT ctid FROM org_${broken}.entity_definitions LIMIT 1)`,
    );
    const before = await fingerprintOrganization(env.clients, broken, ['postgres', 'clickhouse']);
    const failure = await rejectionOf(restore({ backupId: backup.backupId, orgId: broken, mode: 'replace' }));
    expect(failureText(failure)).toMatch(
      /stopped while loading its staged copy.*cannot create table zz_modern[\s\S]*nothing was changed/,
    );
    const after = await fingerprintOrganization(env.clients, broken, ['postgres', 'clickhouse']);
    expect(compareObjectFingerprints(before.objects, after.objects).filter((c) => !c.equal)).toEqual([]);

    // And into-empty: the organization gone, the failed restore leaves it gone (nothing half-restored).
    await clearOrganizationPostgres(env.clients.postgres, organizationDataMap(broken));
    await dropSeededOrganization(env.clients, broken);
    await rejectionOf(restore({ backupId: backup.backupId, orgId: broken }));
    expect(
      (await fingerprintOrganization(env.clients, broken, ['postgres', 'clickhouse'])).objects.filter(
        (o) => o.rows > 0,
      ),
    ).toEqual([]);
  });
});
