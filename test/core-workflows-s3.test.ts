import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { readDeletionLog } from '../src/activities/cross-store/deletion-log';
import { runCli } from '../src/cli/main';
import { connectRecoveryClient, type RecoveryClient } from '../src/client';
import { startOrganizationDeletion } from '../src/client/deletion';
import { backupManifestSchema, type BackupManifest } from '../src/contracts/backup';
import { fingerprintOrganization, type OrganizationFingerprint } from '../src/platform/fingerprint';
import { compareObjectFingerprints } from '../src/platform/fingerprint-compare';
import { dropSeededOrganization, seedOrganization } from '../src/platform/seed-organization';
import { readBlob } from '../src/storage/blob-store';
import { createBackupStore } from '../src/storage/configured-backup-store';
import { backupOrganization, pruneBackups, restoreOrganization, verifyBackup } from '../src/workflows';
import { captureIo } from './support/cli-io';
import { removeDeletionArtifacts, terminateIfRunning } from './support/deletion';
import { failureText, rejectionOf } from './support/failures';
import { listLocalS3Objects, localS3Blobs, localS3Env, removeLocalS3Prefix } from './support/local-s3';
import { startTestWorker, uniqueOrgId, type TestWorker } from './support/test-worker';

/** Restore brings back PostgreSQL and ClickHouse, never the queue or Redis. */
const durable = (f: OrganizationFingerprint) =>
  f.objects.filter((o) => o.store === 'postgres' || o.store === 'clickhouse');

/**
 * The core workflows of test/backup, verify, restore, deletion-retention and cli-additions on
 * BACKUP_STORE=s3 (the gofakes3 server of `scripts/stack.sh up s3`), with encryption on, one
 * organization through its whole life: backup and verification into the bucket, a replace restore
 * from it, a damaged backup refused, listing, describe and prune through the worker, and the
 * deletion with its held backup, pruned around and then shredded. What is asserted is read from the
 * bucket through the S3 API, around the store under test. test/s3-backup-store.test.ts covers the
 * into-empty restore of a dropped organization.
 */
describe('the core workflows on the S3 store', () => {
  let env: TestWorker;
  let sdk: RecoveryClient;
  let backupDir: string;
  let laptopDir: string;
  const s3Env = localS3Env('core-workflows');
  const blobs = localS3Blobs(s3Env);
  const orgId = uniqueOrgId('s3cw');
  const workflows: string[] = [];
  /** The first backup, verified: what the replace restores and the damage tests damage. */
  let first: { backupId: string; manifest: BackupManifest };
  /** The replace restore's safety backup of the organization. */
  let safetyBackupId = '';

  /** The CLI as an operator runs it on a laptop: no S3 settings, an empty BACKUP_DIR of its own. */
  const cli = async (...args: string[]) => {
    const io = captureIo({ ...process.env, BACKUP_STORE: 'filesystem', BACKUP_DIR: laptopDir });
    const code = await runCli([...args, '--task-queue', env.taskQueue], io);
    return { code, out: io.out, err: io.err };
  };
  const readManifest = async (backupId: string) =>
    backupManifestSchema.parse(
      JSON.parse((await readBlob(blobs, `${orgId}/${backupId}/manifest.json`))?.toString('utf8') ?? 'null'),
    );
  const backupKeys = async (backupId: string) =>
    (await listLocalS3Objects(s3Env, `${orgId}/${backupId}/`)).map((o) => o.key.slice(`${orgId}/${backupId}/`.length));
  /** Files of BACKUP_DIR other than data keys (which stay on disk for now: configured-backup-store.ts). */
  const filesOnDiskBesideKeys = async () =>
    (await readdir(backupDir, { recursive: true, withFileTypes: true }))
      .filter((e) => e.isFile() && e.name !== 'keys.json')
      .map((e) => path.join(e.parentPath, e.name));

  beforeAll(async () => {
    backupDir = await mkdtemp(path.join(os.tmpdir(), 'eloquent-s3-core-keys-'));
    laptopDir = await mkdtemp(path.join(os.tmpdir(), 'eloquent-s3-core-laptop-'));
    env = await startTestWorker('s3-core', {
      ...s3Env,
      BACKUP_DIR: backupDir,
      BACKUP_MASTER_KEY: randomBytes(32).toString('base64'),
    });
    sdk = await connectRecoveryClient({ config: env.config, taskQueue: env.taskQueue });
    await seedOrganization(env.clients, orgId, { scale: 'small', seed: 's3-core' });
    const summary = await env.client.workflow.execute(backupOrganization, {
      taskQueue: env.taskQueue,
      workflowId: `backup-${orgId}-${Date.now()}`,
      args: [{ orgId, reason: 's3 core workflows', verify: true }],
    });
    first = { backupId: summary.backupId, manifest: await readManifest(summary.backupId) };
  }, 300_000);
  afterAll(async () => {
    await sdk?.close();
    if (env) {
      for (const id of workflows) await terminateIfRunning(env.client, id);
      await dropSeededOrganization(env.clients, orgId).catch(() => undefined);
      await removeDeletionArtifacts(env.clients, backupDir, orgId);
      await env.shutdown();
    }
    await removeLocalS3Prefix(s3Env);
    for (const dir of [backupDir, laptopDir]) if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('a verified backup is, in the bucket, each artifact with its sidecar written after it, the manifest after all of them, and verification.json', async () => {
    expect(env.config.backup.store).toBe('s3');
    const { backupId, manifest } = first;
    expect(manifest.keyId).toMatch(/^dk_/);
    const objects = await listLocalS3Objects(s3Env, `${orgId}/${backupId}/`);
    const at = new Map(objects.map((o) => [o.key.slice(`${orgId}/${backupId}/`.length), o]));
    expect([...at.keys()].sort()).toEqual(
      [
        '.backup.json',
        'manifest.json',
        'verification.json',
        ...manifest.artifacts.flatMap((a) => [a.file, `${a.file}.meta.json`]),
      ].sort(),
    );
    const manifestWritten = at.get('manifest.json')?.lastModified.getTime() ?? 0;
    for (const artifact of manifest.artifacts) {
      const data = at.get(artifact.file);
      const sidecar = at.get(`${artifact.file}.meta.json`);
      expect({ file: artifact.file, bytes: data?.bytes }).toEqual({ file: artifact.file, bytes: artifact.bytes });
      expect(sidecar?.lastModified.getTime()).toBeGreaterThanOrEqual(data?.lastModified.getTime() ?? Infinity);
      expect(manifestWritten).toBeGreaterThanOrEqual(sidecar?.lastModified.getTime() ?? Infinity);
    }
    expect(at.get('verification.json')?.lastModified.getTime()).toBeGreaterThanOrEqual(manifestWritten);
    expect(await blobs.listUnfinished(`${orgId}/`)).toEqual([]);
    expect(await filesOnDiskBesideKeys()).toEqual([]);
  });

  it('restoreOrganization replace puts back the backup from the bucket over a changed organization, after a verified safety backup into the bucket', async () => {
    await env.clients.postgres.query(
      `UPDATE org_${orgId}.entity_definitions SET name = name || ' (edited)' WHERE ctid IN (SELECT ctid FROM org_${orgId}.entity_definitions LIMIT 1)`,
    );
    const edited = await fingerprintOrganization(env.clients, orgId, ['postgres', 'clickhouse']);
    expect(compareObjectFingerprints(first.manifest.fingerprint.objects, edited.objects).some((c) => !c.equal)).toBe(
      true,
    );
    const result = await env.client.workflow.execute(restoreOrganization, {
      taskQueue: env.taskQueue,
      workflowId: `restore-${orgId}-${Date.now()}`,
      args: [{ backupId: first.backupId, orgId, mode: 'replace' }],
    });
    expect(result.comparisons.length).toBeGreaterThan(8);
    expect(result.comparisons.filter((c) => !c.equal)).toEqual([]);
    const now = await fingerprintOrganization(env.clients, orgId, ['postgres', 'clickhouse']);
    expect(compareObjectFingerprints(first.manifest.fingerprint.objects, durable(now)).filter((c) => !c.equal)).toEqual(
      [],
    );

    // The safety backup is a complete, verified backup of the organization as it was, in the bucket.
    expect(result.safetyBackupId).toBeDefined();
    safetyBackupId = result.safetyBackupId ?? '';
    const safety = await readManifest(safetyBackupId);
    expect(compareObjectFingerprints(edited.objects, safety.fingerprint.objects).filter((c) => !c.equal)).toEqual([]);
    expect(await backupKeys(safetyBackupId)).toEqual(expect.arrayContaining(['manifest.json', 'verification.json']));
    expect(await filesOnDiskBesideKeys()).toEqual([]);
  });

  it('one flipped byte or a missing artifact in the bucket: verification fails and restore refuses, naming the artifact, and the organization is untouched', async () => {
    const key = `${orgId}/${first.backupId}/clickhouse/kg_nodes.native`;
    const original = await readBlob(blobs, key);
    if (!original) throw new Error(`${key} is not in the bucket`);
    const flipped = Buffer.from(original);
    flipped[100] = (flipped[100] ?? 0) ^ 0xff;
    const context = { store: 'storage' as const, object: key };
    const before = await fingerprintOrganization(env.clients, orgId, ['postgres', 'clickhouse']);
    const restoreFirst = () =>
      rejectionOf(
        env.client.workflow.execute(restoreOrganization, {
          taskQueue: env.taskQueue,
          workflowId: `restore-${orgId}-${Date.now()}`,
          args: [{ backupId: first.backupId, orgId, mode: 'replace' }],
        }),
      );
    try {
      await blobs.put(key, flipped, context);
      const verification = await rejectionOf(
        env.client.workflow.execute(verifyBackup, {
          taskQueue: env.taskQueue,
          workflowId: `verify-flipped-${first.backupId}-${Date.now()}`,
          args: [{ backupId: first.backupId, orgId }],
        }),
      );
      expect(verification).toBeInstanceOf(WorkflowFailedError);
      expect(failureText(verification)).toMatch(
        /clickhouse\/kg_nodes\.native: SHA-256 [0-9a-f]{64}, manifest says [0-9a-f]{64}/,
      );
      expect(failureText(await restoreFirst())).toMatch(
        /is damaged: clickhouse\/kg_nodes\.native: SHA-256 [0-9a-f]{64}, manifest says/,
      );

      await blobs.delete(key, context);
      expect(failureText(await restoreFirst())).toMatch(/is damaged: clickhouse\/kg_nodes\.native: missing/);
    } finally {
      await blobs.put(key, original, context);
    }
    const after = await fingerprintOrganization(env.clients, orgId, ['postgres', 'clickhouse']);
    expect(compareObjectFingerprints(before.objects, after.objects).filter((c) => !c.equal)).toEqual([]);
  });

  it('`backups`, `describe` and `prune` from an operator laptop read and prune the bucket through the worker', async () => {
    const listed = await cli('backups', orgId, '-o', 'json');
    expect(listed.err).toBe('');
    expect(listed.code).toBe(0);
    const { backups } = JSON.parse(listed.out) as {
      backups: Array<{ backupId: string; status: string; keyId?: string; verification?: { result: string } }>;
    };
    expect(backups.map((b) => ({ backupId: b.backupId, status: b.status, verified: b.verification?.result }))).toEqual([
      { backupId: safetyBackupId, status: 'complete', verified: 'passed' },
      // Its verification of the flipped byte (above) is what its verification.json now says.
      { backupId: first.backupId, status: 'complete', verified: 'failed' },
    ]);

    // Without --org: the worker finds the backup among the organizations of the bucket.
    const described = await cli('describe', first.backupId, '-o', 'json');
    expect(described.err).toBe('');
    expect(JSON.parse(described.out)).toMatchObject({
      orgId,
      backupId: first.backupId,
      manifest: { keyId: first.manifest.keyId, artifacts: first.manifest.artifacts },
      verification: { result: 'failed' },
    });

    const keepNothing = ['--org', orgId, '--keep-last', '0', '--keep-daily', '0', '--keep-weekly', '0', '--json'];
    const dry = await cli('prune', ...keepNothing, '--dry-run');
    expect(JSON.parse(dry.out)).toMatchObject({
      dryRun: true,
      organizations: [{ orgId, kept: 1, removed: [first.backupId] }],
    });
    expect(await backupKeys(first.backupId)).toContain('manifest.json');
    const pruned = await cli('prune', ...keepNothing);
    expect(pruned.code).toBe(0);
    expect(JSON.parse(pruned.out)).toMatchObject({
      dryRun: false,
      organizations: [{ orgId, kept: 1, removed: [first.backupId] }],
    });
    // Every object of the pruned backup is gone from the bucket; the newest complete one is whole.
    expect(await backupKeys(first.backupId)).toEqual([]);
    expect(await blobs.listUnfinished(`${orgId}/`)).toEqual([]);
    expect(await backupKeys(safetyBackupId)).toEqual(expect.arrayContaining(['manifest.json', 'verification.json']));
    expect((await sdk.listBackups(orgId)).map((b) => b.backupId)).toEqual([safetyBackupId]);
  });

  it('deleteOrganization: the certificate names the verified pre-deletion backup in the bucket, held through the retention, then shredded so even a copy cannot be decrypted', async () => {
    const handle = await startOrganizationDeletion(
      env.client,
      {
        orgId,
        confirmOrgId: orgId,
        requestedBy: 'jest',
        reason: 's3 core workflows',
        gracePeriod: '0s',
        backupRetention: '25s',
        storeDownAfter: '30s',
      },
      { taskQueue: env.taskQueue },
    );
    workflows.push(handle.workflowId);
    const result = await handle.result();
    if (result.outcome !== 'deleted') throw new Error(`expected a deletion, got ${JSON.stringify(result)}`);
    const { certificate } = result;
    workflows.push(certificate.retention.shredWorkflowId);
    const preDeletion = certificate.backup;
    if (preDeletion.skipped) throw new Error(`the pre-deletion backup was skipped: ${preDeletion.reason}`);
    const { backupId, keyId, artifacts } = preDeletion;
    expect(preDeletion.verified).toBe(true);
    expect(keyId).toMatch(/^dk_/);
    expect((await fingerprintOrganization(env.clients, orgId)).objects.filter((o) => o.rows > 0)).toEqual([]);

    // During the retention: the backup the certificate names is in the bucket as the certificate says, and held.
    const objects = new Map(
      (await listLocalS3Objects(s3Env, `${orgId}/${backupId}/`)).map((o) => [
        o.key.slice(`${orgId}/${backupId}/`.length),
        o,
      ]),
    );
    for (const artifact of artifacts) expect(objects.get(artifact.file)?.bytes).toBe(artifact.bytes);
    expect([...objects.keys()]).toEqual(expect.arrayContaining(['manifest.json', 'verification.json', 'hold.json']));
    const encrypted = artifacts.find((a) => a.file.endsWith('.native')) ?? artifacts[0];
    if (!encrypted) throw new Error('the pre-deletion backup has no artifacts');
    // An operator (or a replica) copies it away.
    const copies = new Map<string, Buffer>();
    for (const file of [encrypted.file, `${encrypted.file}.meta.json`]) {
      const content = await readBlob(blobs, `${orgId}/${backupId}/${file}`);
      if (!content) throw new Error(`${file} is not in the bucket`);
      copies.set(file, content);
    }
    // Prune keeps the held backup and removes the older one (the replace's safety backup).
    const prune = await env.client.workflow.execute(pruneBackups, {
      taskQueue: env.taskQueue,
      workflowId: `prune-${orgId}-${Date.now()}`,
      args: [{ orgId, keepLast: 0, keepDaily: 0, keepWeekly: 0 }],
    });
    expect(prune.organizations).toEqual([{ orgId, kept: 1, removed: [safetyBackupId] }]);
    expect(Date.now()).toBeLessThan(Date.parse(certificate.retention.endsAt));

    const shred = await env.client.workflow.getHandle(certificate.retention.shredWorkflowId).result();
    expect(shred).toMatchObject({ orgId, removedBackups: [backupId], destroyedKeyIds: [keyId] });
    // No backup of the organization is left in the bucket (nothing in any backup folder).
    expect((await listLocalS3Objects(s3Env, `${orgId}/`)).filter((o) => o.key.split('/').length > 2)).toEqual([]);
    expect(await blobs.listUnfinished(`${orgId}/`)).toEqual([]);

    // The copy, put back where the worker looks, cannot be read: its key is destroyed.
    for (const [file, content] of copies)
      await blobs.put(`${orgId}/${backupId}/${file}`, content, { store: 'storage', object: file });
    const store = createBackupStore(env.config.backup);
    const refusal = await rejectionOf(
      store.openArtifactReader({ orgId, backupId, path: encrypted.file }).then(async (stream) => {
        for await (const chunk of stream) void chunk;
      }),
    );
    expect(failureText(refusal)).toMatch(/destroyed/);

    // The deletion log, in the bucket, says when.
    expect((await listLocalS3Objects(s3Env, `_deletions/${orgId}/`)).map((o) => o.key)).toContain(
      `_deletions/${orgId}/deletion-log.json`,
    );
    const logged = (await readDeletionLog(store, orgId)).deletions.find((d) => d.runId === certificate.runId);
    expect(logged?.backup).toMatchObject({ backupId });
    expect(logged?.retention).toMatchObject({ removedBackups: [backupId], destroyedKeyIds: [keyId] });
    expect(logged?.retention.shreddedAt).toBeDefined();
  });

  it("pruneBackups over every organization leaves alone what another application keeps beside the backups (S3_PREFIX defaults to the bucket's root)", async () => {
    // Two "releases" of another application, each with a manifest.json, the older first.
    const foreign = ['Reports-2024/q1/manifest.json', 'Reports-2024/q2/manifest.json'];
    for (const key of foreign) await blobs.put(key, '{"app": "reports"}\n', { store: 'storage', object: key });
    const prune = await env.client.workflow.execute(pruneBackups, {
      taskQueue: env.taskQueue,
      workflowId: `prune-all-${Date.now()}`,
      args: [{ keepLast: 0, keepDaily: 0, keepWeekly: 0 }],
    });
    expect((await listLocalS3Objects(s3Env, 'Reports-2024/')).map((o) => o.key)).toEqual(foreign);
    expect(prune.organizations.map((o) => o.orgId)).not.toContain('Reports-2024');
  });
});
