import { rm } from 'node:fs/promises';
import * as path from 'node:path';
import { connectRecoveryClient, type RecoveryClient } from '../src/client';
import { startOrganizationDeletion } from '../src/client/deletion';
import { runCli } from '../src/cli/main';
import type { DeletionPlan, RestorePlan } from '../src/contracts/plans';
import type { DeletionStatus } from '../src/contracts/deletion';
import type { RestoreResult } from '../src/contracts/verification';
import { ORG_PLACEHOLDER } from '../src/platform/data-map';
import { describeOrganization } from '../src/platform/describe';
import { fingerprintOrganization } from '../src/platform/fingerprint';
import { dropSeededOrganization, seedOrganization } from '../src/platform/seed-organization';
import { captureIo } from './support/cli-io';
import { removeDeletionArtifacts } from './support/deletion';
import { startTestWorker, uniqueOrgId, type TestWorker } from './support/test-worker';

/**
 * `restoreOrganization` with `{orgId, latest: true}` restores the newest VERIFIED backup, and both
 * destructive workflows answer `dryRun: true` with a plan that changes nothing and whose figures are
 * the ones the real run then reports.
 */
describe('restore latest and dry-run plans', () => {
  let env: TestWorker;
  let sdk: RecoveryClient;
  const source = uniqueOrgId('plsrc');
  const clone = uniqueOrgId('plcln');
  const doomed = uniqueOrgId('pldel');
  let verifiedBackupId = '';
  let newerBackupId = '';

  const cli = async (...args: string[]) => {
    const io = captureIo(process.env);
    const code = await runCli([...args, '--task-queue', env.taskQueue], io);
    return { code, out: io.out, err: io.err };
  };

  beforeAll(async () => {
    env = await startTestWorker('dry-run-plans');
    sdk = await connectRecoveryClient({ config: env.config, taskQueue: env.taskQueue });
    await seedOrganization(env.clients, source, { scale: 'small', seed: 'plans' });
    await seedOrganization(env.clients, doomed, { scale: 'small', seed: 'plans-delete' });
    const verified = await sdk.startBackup({ orgId: source, reason: 'plans test, verified', verify: true });
    verifiedBackupId = (await sdk.waitForBackup(verified)).backupId;
    const newer = await sdk.startBackup({ orgId: source, reason: 'plans test, not verified', verify: false });
    newerBackupId = (await sdk.waitForBackup(newer)).backupId;
  }, 300_000);
  afterAll(async () => {
    await sdk?.close();
    if (env) {
      for (const orgId of [source, clone, doomed]) {
        await dropSeededOrganization(env.clients, orgId).catch(() => undefined);
        await rm(path.join(env.config.backup.directory, orgId), { recursive: true, force: true });
        await removeDeletionArtifacts(env.clients, env.config.backup.directory, orgId);
      }
      await env.shutdown();
    }
  });

  it('restore --org --latest --dry-run plans the newest verified backup as a clone and changes nothing; the real restore then writes exactly the planned objects and rows', async () => {
    expect(newerBackupId).not.toBe(verifiedBackupId);
    const sourceBefore = await fingerprintOrganization(env.clients, source);

    const dry = await cli('restore', '--org', source, '--latest', '--into', clone, '--dry-run', '--json');
    expect(dry.err).toBe('');
    expect(dry.code).toBe(0);
    const plan = (JSON.parse(dry.out) as { plan: RestorePlan }).plan;
    expect(plan).toMatchObject({
      dryRun: true,
      backupId: verifiedBackupId,
      sourceOrgId: source,
      targetOrgId: clone,
      idMapping: { from: source, to: clone },
      refusals: [],
      replace: [],
      safetyBackup: false,
    });
    expect(plan.names).toContainEqual({
      store: 'clickhouse',
      kind: 'database',
      from: `org_${source}`,
      to: `org_${clone}`,
    });
    expect(plan.names).toContainEqual({ store: 'postgres', kind: 'schema', from: `org_${source}`, to: `org_${clone}` });
    expect(plan.create.length).toBeGreaterThan(8);
    expect(plan.totals.readBytes).toBeGreaterThan(0);
    // Nothing changed: the clone does not exist, the source is as it was.
    expect((await describeOrganization(env.clients, clone)).exists).toBe(false);
    expect(await fingerprintOrganization(env.clients, source)).toMatchObject({ objects: sourceBefore.objects });

    // The human form is a table naming every object to create.
    const human = await cli('restore', '--org', source, '--latest', '--into', clone, '--dry-run');
    expect(human.code).toBe(0);
    expect(human.out).toMatch(/^DRY RUN — nothing was changed\. Restore of backup /);
    expect(human.out).toMatch(/^action +store +object +rows +bytes$/m);
    for (const o of plan.create) expect(human.out).toContain(o.object);

    const real = await cli('restore', '--org', source, '--latest', '--into', clone, '--json', '--poll-ms', '200');
    expect(real.code).toBe(0);
    const result = (JSON.parse(real.out) as { result: RestoreResult }).result;
    expect(result.backupId).toBe(verifiedBackupId);
    const written = result.comparisons
      .map((c) => ({ object: c.object.split(ORG_PLACEHOLDER).join(clone), rows: c.actual?.rows }))
      .sort((a, b) => a.object.localeCompare(b.object));
    expect(written).toEqual(
      plan.create.map((o) => ({ object: o.object, rows: o.rows })).sort((a, b) => a.object.localeCompare(b.object)),
    );
  }, 300_000);

  it('a replace dry run lists what the target holds now and the safety backup; into-empty over it lists the refusal', async () => {
    const before = await fingerprintOrganization(env.clients, source);
    const replace = await sdk.planRestore({ backupId: verifiedBackupId, orgId: source, mode: 'replace' });
    expect(replace.safetyBackup).toBe(true);
    expect(replace.refusals).toEqual([]);
    expect(replace.replace.length).toBeGreaterThan(0);
    const described = await describeOrganization(env.clients, source);
    expect(replace.totals.replaceRows).toBe(
      described.postgres.schemas.flatMap((s) => s.tables).reduce((n, t) => n + t.rows, 0) +
        described.postgres.sharedRows.reduce((n, s) => n + s.rows, 0) +
        described.clickhouse.tables.reduce((n, t) => n + t.rows, 0),
    );
    const intoEmpty = await sdk.planRestore({ backupId: verifiedBackupId, orgId: source, mode: 'into-empty' });
    expect(intoEmpty.refusals).toEqual([
      expect.stringMatching(new RegExp(`^target organization ${source} is not empty`)),
    ]);
    expect(await fingerprintOrganization(env.clients, source)).toMatchObject({ objects: before.objects });
  }, 120_000);

  it('delete --dry-run changes nothing in any store, and the real deletion then removes exactly the planned counts step by step', async () => {
    const before = await fingerprintOrganization(env.clients, doomed);
    const dry = await cli(
      'delete',
      doomed,
      '--dry-run',
      '--skip-backup',
      '--reason',
      'plans test',
      '--grace',
      '0s',
      '--json',
    );
    expect(dry.err).toBe('');
    expect(dry.code).toBe(0);
    const plan = (JSON.parse(dry.out) as { plan: DeletionPlan }).plan;
    expect(plan).toMatchObject({
      dryRun: true,
      orgId: doomed,
      status: 'active',
      refusals: [],
      backup: { skipped: true },
    });
    expect(plan.sessionsRevoked).toBeGreaterThan(0);
    for (const step of ['queue', 'redis', 'clickhouse', 'postgres-schemas', 'postgres-shared-rows'])
      expect(plan.purge.find((p) => p.step === step)?.removed).toBeDefined();
    expect(plan.totals.rows).toBeGreaterThan(0);
    // Every store as it was (sessions too), the row still active, and no deletion workflow ran.
    expect(await fingerprintOrganization(env.clients, doomed)).toMatchObject({ objects: before.objects });
    const human = await cli('delete', doomed, '--dry-run', '--skip-backup', '--reason', 'plans test');
    expect(human.out).toMatch(/^DRY RUN — nothing was changed\. Deletion of /);
    expect(human.out).toMatch(/^step +store +object +rows +bytes$/m);

    const handle = await startOrganizationDeletion(
      env.client,
      {
        orgId: doomed,
        confirmOrgId: doomed,
        requestedBy: 'jest',
        reason: 'plans test',
        gracePeriod: '0s',
        skipBackup: true,
        // Shredding (nothing to shred: no backup) runs at once instead of waiting 30 days in a child.
        backupRetention: '1s',
      },
      { taskQueue: env.taskQueue },
    );
    const result = await handle.result();
    if (result.outcome !== 'deleted') throw new Error(`expected a deletion, got ${result.outcome}`);
    for (const planned of plan.purge)
      expect({
        step: planned.step,
        removed: result.certificate.steps.find((s) => s.step === planned.step)?.removed,
      }).toEqual({
        step: planned.step,
        removed: planned.removed,
      });
    const status = await handle.query<DeletionStatus>('deletionStatus');
    expect(status.sessionsRevoked).toBe(plan.sessionsRevoked);
  }, 300_000);
});
