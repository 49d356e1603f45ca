/**
 * Deletion benchmark (issue 6): `deleteOrganization` (grace period 0) of a seeded organization against
 * the raw drop of the same data, in one run.
 *
 *   npx tsx bench/delete-organization.ts [--scale medium|small|large]
 *
 * 1. Seeds two clones, `benchdel_<scale>_<id>a` and `…b` (same seed, same size).
 * 2. Raw baseline: `dropSeededOrganization` of `…b` — DROP SCHEMA, DELETE of shared rows, DROP
 *    DATABASE, JetStream purge and SCAN + UNLINK, the stores in parallel, no backup, no certificate.
 * 3. `deleteOrganization` of `…a` on a worker in this process: validation, preflight, backup +
 *    verification, the purge in order, residue check and certificate.
 *
 * Prints the wall time of the whole deletion and of its phases (taken from the certificate: before
 * the point of no return = validation + preflight + backup + verify; after it = purge + residue check +
 * certificate), and the ratio purge / raw drop. Backups go to a temporary folder removed at the end.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Runtime } from '@temporalio/worker';
import { startOrganizationDeletion } from '../src/client/deletion';
import { loadConfig } from '../src/config';
import { JsonLineLogger } from '../src/logger';
import { loadPlatformModel } from '../src/platform/data-map';
import { dropSeededOrganization, seedOrganization, type SeedScale } from '../src/platform/seed-organization';
import { closeStoreClients, createStoreClients } from '../src/store-clients';
import { createWorker } from '../src/worker';

const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { scale: { type: 'string', default: 'medium' } }, strict: true });
  const scale = values.scale as SeedScale;
  if (!['small', 'medium', 'large'].includes(scale))
    throw new Error(`--scale: expected small, medium or large, got ${JSON.stringify(values.scale)}`);
  Runtime.install({ logger: new JsonLineLogger('WARN') });
  const backupDir = await mkdtemp(path.join(os.tmpdir(), 'eloquent-bench-delete-'));
  const config = loadConfig({ ...process.env, BACKUP_DIR: backupDir });
  const clients = createStoreClients(config);
  const model = await loadPlatformModel(config.platformModelFile);
  const id = randomUUID().replace(/-/g, '').slice(0, 8);
  const deleted = `benchdel_${scale}_${id}a`;
  const dropped = `benchdel_${scale}_${id}b`;
  const taskQueue = `bench-delete-${id}`;
  const nativeConnection = await NativeConnection.connect({ address: config.temporal.address });
  const connection = await Connection.connect({ address: config.temporal.address });
  const client = new Client({ connection, namespace: config.temporal.namespace });
  let shredWorkflowId: string | undefined;
  try {
    let started = performance.now();
    await Promise.all([
      seedOrganization(clients, deleted, { scale, seed: 'bench' }),
      seedOrganization(clients, dropped, { scale, seed: 'bench' }),
    ]);
    console.log(`seeded two ${scale} organizations in ${seconds(performance.now() - started)}`);

    started = performance.now();
    await dropSeededOrganization(clients, dropped, model);
    const rawMs = performance.now() - started;
    console.log(`raw drop (dropSeededOrganization):            ${seconds(rawMs)}`);

    const worker = await createWorker({
      config,
      clients,
      connection: nativeConnection,
      model,
      temporal: client,
      taskQueue,
    });
    const running = worker.run();
    try {
      started = performance.now();
      const handle = await startOrganizationDeletion(
        client,
        {
          orgId: deleted,
          confirmOrgId: deleted,
          requestedBy: 'bench',
          reason: 'benchmark',
          gracePeriod: '0s',
          backupRetention: '1h',
        },
        { taskQueue },
      );
      const result = await handle.result();
      const wallMs = performance.now() - started;
      if (result.outcome !== 'deleted') throw new Error(`expected a deletion, got ${JSON.stringify(result)}`);
      const c = result.certificate;
      shredWorkflowId = c.retention.shredWorkflowId;
      const at = (iso: string | undefined) => (iso ? Date.parse(iso) : NaN);
      const before = at(c.pointOfNoReturnAt) - at(c.requestedAt);
      const after = at(c.completedAt) - at(c.pointOfNoReturnAt);
      const purge = c.steps.reduce((ms, s) => ms + (at(s.finishedAt) - at(s.startedAt)), 0);
      console.log(`deleteOrganization, grace 0 (wall):          ${seconds(wallMs)}`);
      console.log(`  validate + preflight + backup + verify:     ${seconds(before)}`);
      console.log(`  purge + residue check + certificate:        ${seconds(after)}`);
      for (const s of c.steps)
        console.log(
          `    ${s.step.padEnd(22)} ${seconds(at(s.finishedAt) - at(s.startedAt)).padStart(8)}  ${JSON.stringify(s.removed)}`,
        );
      console.log(
        `ratio purge steps / raw drop:                 ${(purge / rawMs).toFixed(2)} (the raw drop runs the stores in parallel; the deletion runs them in the runbook's order)`,
      );
    } finally {
      worker.shutdown();
      await running;
    }
  } finally {
    if (shredWorkflowId)
      await client.workflow
        .getHandle(shredWorkflowId)
        .terminate('benchmark done')
        .catch(() => undefined);
    await dropSeededOrganization(clients, deleted).catch(() => undefined);
    await dropSeededOrganization(clients, dropped).catch(() => undefined);
    await clients.postgres
      .query('DELETE FROM eloquent_ops.deletion_certificates WHERE org_id = $1', [deleted])
      .catch(() => undefined);
    await rm(backupDir, { recursive: true, force: true });
    await connection.close();
    await nativeConnection.close();
    await closeStoreClients(clients);
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exit(1);
});
