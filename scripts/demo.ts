/**
 * The demo: a worker in this process, then the runbook's operations through the Temporal client,
 * printing what an operator would want to see. Every run is visible in the Temporal UI
 * (http://127.0.0.1:8233). The demo's organizations get fresh ids each run and are removed at the end;
 * their backups stay under BACKUP_DIR so they can be inspected.
 *
 *   preflight → seed two organizations → backup + verify one → clone-restore it under a new id
 *   (fingerprints side by side) → delete it (grace period of seconds, certificate) → restore it
 *   from the pre-deletion backup (override recorded) → fingerprint equals the original.
 */
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Runtime } from '@temporalio/worker';
import { deletionStatus, graceTimeLeftMs, startOrganizationDeletion } from '../src/client/deletion';
import { loadConfig, temporalConnectionOptions } from '../src/config';
import type { BackupManifest } from '../src/contracts/backup';
import type { DeletionStatus } from '../src/contracts/deletion';
import { backupManifestSchema } from '../src/contracts/backup';
import { JsonLineLogger } from '../src/logger';
import { loadPlatformModel } from '../src/platform/data-map';
import { fingerprintOrganization, type ObjectFingerprint } from '../src/platform/fingerprint';
import { compareObjectFingerprints } from '../src/platform/fingerprint-compare';
import { dropSeededOrganization, seedOrganization } from '../src/platform/seed-organization';
import { OperationAttribute, OrgIdAttribute } from '../src/search-attributes';
import { createBackupStore } from '../src/storage/configured-backup-store';
import { closeStoreClients, createStoreClients, type StoreClients } from '../src/store-clients';
import { createWorker } from '../src/worker';
import { backupOrganization, platformPreflight, restoreOrganization } from '../src/workflows';

const stamp = Date.now().toString(36);
const timeId = () => new Date().toISOString().replace(/[:.]/g, '-');

function heading(text: string): void {
  console.log(`\n=== ${text} ${'='.repeat(Math.max(0, 90 - text.length))}`);
}

function row(cells: Array<string | number>, widths: number[]): string {
  return cells.map((c, i) => String(c).padEnd(widths[i] ?? 12)).join(' ');
}

function printManifest(manifest: BackupManifest): void {
  const widths = [42, 10, 8, 18];
  console.log(row(['artifact', 'bytes', 'rows', 'sha256'], widths));
  for (const a of manifest.artifacts)
    console.log(row([a.file, a.bytes, a.rows ?? '-', `${a.sha256.slice(0, 16)}…`], widths));
  const left = [
    ...manifest.ephemeral.queue.map((q) => `${q.messages} messages on ${q.subject}`),
    ...manifest.ephemeral.redis.map((r) => `${r.keys} keys ${r.pattern}`),
  ];
  console.log(`left out by design (ephemeral): ${left.join(', ')}`);
}

function printSideBySide(
  leftTitle: string,
  left: ObjectFingerprint[],
  rightTitle: string,
  right: ObjectFingerprint[],
): boolean {
  const comparisons = compareObjectFingerprints(left, right);
  const widths = [44, 26, 26, 5];
  console.log(row(['object', leftTitle, rightTitle, 'same'], widths));
  for (const c of comparisons) {
    const cell = (f?: { rows: number; hash: string }) => (f ? `${f.rows} / ${f.hash}` : '(missing)');
    console.log(row([c.object, cell(c.expected), cell(c.actual), c.equal ? 'yes' : 'NO'], widths));
  }
  return comparisons.every((c) => c.equal);
}

async function durableFingerprint(clients: StoreClients, orgId: string): Promise<ObjectFingerprint[]> {
  return (await fingerprintOrganization(clients, orgId, ['postgres', 'clickhouse'])).objects;
}

/** The deletion's status once it waits out its grace period (polled: the run answers as it goes). */
async function waitForGracePeriod(client: Client, orgId: string): Promise<DeletionStatus> {
  for (;;) {
    const status = await deletionStatus(client, orgId).catch(() => undefined);
    if (
      status &&
      status.step !== 'validating' &&
      status.step !== 'preflight' &&
      status.step !== 'backing-up' &&
      status.step !== 'marking-deleting'
    )
      return status;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function main(): Promise<void> {
  Runtime.install({ logger: new JsonLineLogger('WARN') });
  const config = loadConfig();
  const model = await loadPlatformModel(config.platformModelFile);
  const clients = createStoreClients(config);
  const store = createBackupStore(config.backup);
  const nativeConnection = await NativeConnection.connect(temporalConnectionOptions(config.temporal));
  const connection = await Connection.connect(temporalConnectionOptions(config.temporal));
  const client = new Client({ connection, namespace: config.temporal.namespace });
  const taskQueue = config.temporal.taskQueue;
  const acme = `demo_${stamp}_acme`;
  const globex = `demo_${stamp}_globex`;
  const clone = `demo_${stamp}_clone`;
  console.log('bundling workflows and starting a worker…');
  const worker = await createWorker({ config, clients, connection: nativeConnection, model, temporal: client });
  try {
    await worker.runUntil(async () => {
      heading('platformPreflight');
      const report = await client.workflow.execute(platformPreflight, {
        taskQueue,
        workflowId: `preflight-${timeId()}`,
        args: [{}],
        typedSearchAttributes: [{ key: OperationAttribute, value: 'preflight' }],
      });
      console.log(row(['store', 'address', 'version', 'latency'], [12, 22, 12, 10]));
      for (const p of report.stores)
        console.log(row([p.store, p.address, p.version, `${p.latencyMs.toFixed(1)} ms`], [12, 22, 12, 10]));

      heading(`seeding ${acme} and ${globex} (small)`);
      for (const orgId of [acme, globex]) {
        const seeded = await seedOrganization(clients, orgId, {
          scale: 'small',
          seed: orgId.endsWith('acme') ? 'acme' : 'globex',
          model,
        });
        console.log(`${orgId}: ${JSON.stringify(seeded.durationsMs)} ms per store`);
      }

      heading(`backupOrganization ${acme} (with verification)`);
      const backupWorkflowId = `backup-${acme}-${timeId()}`;
      const backup = await client.workflow.execute(backupOrganization, {
        taskQueue,
        workflowId: backupWorkflowId,
        args: [{ orgId: acme, reason: 'demo' }],
        typedSearchAttributes: [
          { key: OrgIdAttribute, value: acme },
          { key: OperationAttribute, value: 'backup' },
        ],
      });
      const manifest = backupManifestSchema.parse(
        await store.readJson({ orgId: acme, backupId: backup.backupId }, 'manifest.json'),
      );
      console.log(
        `backup ${backup.backupId}: ${backup.artifacts} artifacts, ${backup.bytes} bytes, ${backup.rows} rows, ${backup.durationMs} ms; verified: ${backup.verification?.passed ?? false}`,
      );
      printManifest(manifest);

      heading(`restoreOrganization ${backup.backupId} as a clone: ${clone}`);
      const restored = await client.workflow.execute(restoreOrganization, {
        taskQueue,
        workflowId: `restore-${clone}-${timeId()}`,
        args: [{ backupId: backup.backupId, orgId: acme, targetOrgId: clone }],
      });
      console.log(`restored in ${restored.durationMs} ms; fingerprints (rows / hash), ids mapped out:`);
      printSideBySide(acme, await durableFingerprint(clients, acme), clone, await durableFingerprint(clients, clone));

      heading(`deleteOrganization ${acme} (grace period 3s)`);
      const before = await durableFingerprint(clients, acme);
      const deletion = await startOrganizationDeletion(
        client,
        {
          orgId: acme,
          confirmOrgId: acme,
          requestedBy: 'demo',
          reason: 'demo of the deletion saga',
          gracePeriod: '3s',
        },
        { taskQueue },
      );
      const grace = await waitForGracePeriod(client, acme);
      const left = graceTimeLeftMs(grace);
      console.log(
        left !== undefined
          ? `grace period until ${grace.gracePeriodEndsAt ?? '?'} (${left} ms left): a cancelDeletion signal now would undo the mark`
          : `grace period ended at ${grace.gracePeriodEndsAt ?? '?'}`,
      );
      const outcome = await deletion.result();
      if (outcome.outcome !== 'deleted') throw new Error(`deletion ended ${outcome.outcome}`);
      const certificate = outcome.certificate;
      console.log(
        JSON.stringify(
          {
            ...certificate,
            steps: certificate.steps.map(
              (s) => `${s.step}: ${s.finishedAt} (${s.rounds} round${s.rounds === 1 ? '' : 's'})`,
            ),
          },
          null,
          2,
        ),
      );

      heading(`restoreOrganization ${acme} from its pre-deletion backup (override recorded)`);
      const backupId = certificate.backup.skipped ? backup.backupId : certificate.backup.backupId;
      const back = await client.workflow.execute(restoreOrganization, {
        taskQueue,
        workflowId: `restore-${acme}-${timeId()}`,
        args: [{ backupId, orgId: acme, override: { reason: 'demo: bringing the deleted organization back' } }],
      });
      console.log(`restored in ${back.durationMs} ms; before deletion vs after restore:`);
      const same = printSideBySide('before deletion', before, 'after restore', await durableFingerprint(clients, acme));
      console.log(same ? '\nthe restored organization is identical to the original' : '\nDIFFERENCES FOUND');
      console.log(
        `\nSee every run in the Temporal UI: http://127.0.0.1:${process.env.TEMPORAL_UI_PORT ?? 8233}/namespaces/${config.temporal.namespace}/workflows`,
      );
    });
  } finally {
    for (const orgId of [acme, globex, clone])
      await dropSeededOrganization(clients, orgId, model).catch(() => undefined);
    await connection.close();
    await nativeConnection.close();
    await closeStoreClients(clients);
  }
}

main().catch((err: unknown) => {
  let message = err instanceof Error ? err.message : String(err);
  for (let cause: unknown = err instanceof Error ? err.cause : undefined; cause instanceof Error; cause = cause.cause)
    message += `\n  caused by: ${cause.message}`;
  console.error(message);
  process.exit(1);
});
