// Records the event histories that test/replay.test.ts replays on every change, so a change to
// workflow code that would break a running execution fails a test instead of a production run.
//
//   npx tsx scripts/record-histories.ts            # every scenario
//   npx tsx scripts/record-histories.ts backup     # only the scenarios whose name contains "backup"
//   npx tsx scripts/record-histories.ts --workflows /old/checkout/src/workflows/index.ts restore
//                                                  # on other workflow code, e.g. before a change
//
// The saga branches that need mocked activities are recorded by the jest file itself:
//   RECORD_HISTORIES=1 npx jest test/deletion-saga.test.ts
//
// Needs the local stack (scripts/stack.sh up). Each scenario seeds organizations of its own, runs
// real workflows on a worker of its own, writes the history of the workflow and of every child it
// started (each run of a continue-as-new chain) into test/histories/<scenario>.<type>[.<n>].json,
// notes each file's workflow id in test/histories/workflow-ids.json (replay needs it: workflows
// derive child ids from their own, and deleteOrganization checks its id), and cleans up. Record
// again after a deliberate, patched() change, keeping the old files.
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { jetstream } from '@nats-io/jetstream';
import { bundleWorkflowCode } from '@temporalio/worker';
import { decideParkedDeletion, cancelOrganizationDeletion, startOrganizationDeletion } from '../src/client/deletion';
import { loadConfig } from '../src/config';
import type { DeleteOrganizationInput } from '../src/contracts/deletion';
import { organizationDataMap } from '../src/platform/data-map';
import { dropSeededOrganization, seedOrganization } from '../src/platform/seed-organization';
import { closeStoreClients, createStoreClients, type StoreClients } from '../src/store-clients';
import { archiveChat, backupOrganization, backupPlatform, restoreOrganization, verifyBackup } from '../src/workflows';
import globalSetup from '../test/support/global-setup';
import { HISTORIES_DIR, readWorkflowIds, recordTree, writeWorkflowIds } from '../test/support/history-recording';
import { WORKFLOW_BUNDLE_PATH } from '../test/support/paths';
import { removeDeletionArtifacts, terminateIfRunning, waitForDeletionStatus } from '../test/support/deletion';
import { readOnlyCacheUser } from '../test/support/redis-users';
import { startTestWorker, uniqueOrgId, type TestWorker } from '../test/support/test-worker';

interface Scenario {
  name: string;
  /** Runs the workflows on `env`; returns the ids of the root workflows to record. */
  run(env: TestWorker, admin: StoreClients, orgs: string[]): Promise<string[]>;
  /** A worker configured differently (e.g. a Redis user that may not delete). */
  workerEnv?: (admin: StoreClients) => Promise<{ env: NodeJS.ProcessEnv; cleanup: () => Promise<void> }>;
}

function deletionRequest(orgId: string, extra: Partial<DeleteOrganizationInput> = {}): DeleteOrganizationInput {
  return {
    orgId,
    confirmOrgId: orgId,
    requestedBy: 'record-histories',
    reason: 'recorded for replay tests',
    gracePeriod: '1s',
    backupRetention: '1h',
    ...extra,
  };
}

async function seeded(admin: StoreClients, orgs: string[], prefix: string): Promise<string> {
  const orgId = uniqueOrgId(prefix);
  orgs.push(orgId);
  await seedOrganization(admin, orgId, { scale: 'small', seed: prefix });
  return orgId;
}

/** A scenario that seeds an organization and backs it up with verification: one root workflow. */
function verifiedBackup(prefix: string): Scenario['run'] {
  return async (env, admin, orgs) => {
    const orgId = await seeded(admin, orgs, prefix);
    const workflowId = `backup-${orgId}-${Date.now()}`;
    await env.client.workflow.execute(backupOrganization, {
      taskQueue: env.taskQueue,
      workflowId,
      args: [{ orgId, verify: true, reason: 'record' }],
    });
    return [workflowId];
  };
}

let aclUser = '';

const SCENARIOS: Scenario[] = [
  {
    name: 'backup-verified',
    async run(env, admin, orgs) {
      const orgId = await seeded(admin, orgs, 'rhbk');
      const workflowId = `backup-${orgId}-${Date.now()}`;
      const summary = await env.client.workflow.execute(backupOrganization, {
        taskQueue: env.taskQueue,
        workflowId,
        args: [{ orgId, verify: true, reason: 'record' }],
      });
      const verifyId = `verify-${summary.backupId}-standalone`;
      await env.client.workflow.execute(verifyBackup, {
        taskQueue: env.taskQueue,
        workflowId: verifyId,
        args: [{ orgId, backupId: summary.backupId }],
      });
      return [workflowId, verifyId];
    },
  },
  {
    // backup-verified again after verifyBackup began reading the manifest before the checksums
    // (patch verify-scaled-timeouts) and backups preflighted only the stores they touch;
    // backup-verified keeps the histories from before.
    name: 'backup-scaled-verified',
    run: verifiedBackup('rhsc'),
  },
  {
    // A backup after it probed its stores inline with its checks and counted what it leaves out
    // while backing up (patch backup-organization-fewer-rounds); the scenarios above keep the
    // histories of the preflight child.
    name: 'backup-fewer-rounds',
    run: verifiedBackup('rhfr'),
  },
  {
    // The same after the probes, checks and counts became local activities (patch
    // backup-organization-local-steps) and a verification stops one store's restore when the
    // other's fails (verify-stops-the-other-restore); backup-fewer-rounds keeps the runs before.
    name: 'backup-local-steps',
    run: verifiedBackup('rhls'),
  },
  {
    name: 'restore',
    async run(env, admin, orgs) {
      const orgId = await seeded(admin, orgs, 'rhrs');
      const clone = uniqueOrgId('rhrc');
      orgs.push(clone);
      const summary = await env.client.workflow.execute(backupOrganization, {
        taskQueue: env.taskQueue,
        workflowId: `backup-${orgId}-${Date.now()}`,
        args: [{ orgId, verify: false }],
      });
      const intoEmpty = `restore-${clone}-${Date.now()}`;
      await env.client.workflow.execute(restoreOrganization, {
        taskQueue: env.taskQueue,
        workflowId: intoEmpty,
        args: [{ backupId: summary.backupId, orgId, targetOrgId: clone }],
      });
      const replace = `restore-${orgId}-${Date.now()}`;
      await env.client.workflow.execute(restoreOrganization, {
        taskQueue: env.taskQueue,
        workflowId: replace,
        args: [{ backupId: summary.backupId, orgId, mode: 'replace' }],
      });
      return [intoEmpty, replace];
    },
  },
  {
    // A replace that loads beside the original (patch restore-replace-swaps-beside-original): one
    // whose PostgreSQL load fails midway and is renamed back, then one that succeeds.
    name: 'replace-swap',
    async run(env, admin, orgs) {
      const orgId = await seeded(admin, orgs, 'rhsw');
      const summary = await env.client.workflow.execute(backupOrganization, {
        taskQueue: env.taskQueue,
        workflowId: `backup-${orgId}-${Date.now()}`,
        args: [{ orgId, verify: false }],
      });
      const refusal = `eloquent_record_refuse_${orgId}`;
      await admin.postgres.query(`
        CREATE FUNCTION public.${refusal}() RETURNS event_trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF EXISTS (SELECT 1 FROM pg_event_trigger_ddl_commands() WHERE schema_name = 'org_${orgId}') THEN
            RAISE EXCEPTION 'refused for the recording';
          END IF;
        END $$;
        CREATE EVENT TRIGGER ${refusal} ON ddl_command_end WHEN TAG IN ('CREATE INDEX') EXECUTE FUNCTION public.${refusal}();`);
      const failed = `restore-${orgId}-${Date.now()}`;
      try {
        await env.client.workflow
          .execute(restoreOrganization, {
            taskQueue: env.taskQueue,
            workflowId: failed,
            args: [{ backupId: summary.backupId, orgId, mode: 'replace' }],
          })
          .then(
            () => Promise.reject(new Error('the replace was to fail')),
            () => undefined,
          );
      } finally {
        await admin.postgres.query(`DROP EVENT TRIGGER IF EXISTS ${refusal}`);
        await admin.postgres.query(`DROP FUNCTION IF EXISTS public.${refusal}()`);
      }
      const replaced = `restore-${orgId}-${Date.now()}`;
      await env.client.workflow.execute(restoreOrganization, {
        taskQueue: env.taskQueue,
        workflowId: replaced,
        args: [{ backupId: summary.backupId, orgId, mode: 'replace' }],
      });
      return [failed, replaced];
    },
  },
  {
    name: 'delete-completed',
    async run(env, admin, orgs) {
      const orgId = await seeded(admin, orgs, 'rhdl');
      const handle = await startOrganizationDeletion(env.client, deletionRequest(orgId), { taskQueue: env.taskQueue });
      const result = await handle.result();
      if (result.outcome === 'deleted')
        await terminateIfRunning(env.client, result.certificate.retention.shredWorkflowId);
      return [handle.workflowId];
    },
  },
  {
    name: 'delete-cancelled',
    async run(env, admin, orgs) {
      const orgId = await seeded(admin, orgs, 'rhdc');
      const handle = await startOrganizationDeletion(env.client, deletionRequest(orgId, { gracePeriod: '10m' }), {
        taskQueue: env.taskQueue,
      });
      await waitForDeletionStatus(env.client, handle.workflowId, (s) => s.step === 'grace-period', 180_000);
      await cancelOrganizationDeletion(env.client, orgId, { by: 'record-histories', reason: 'changed our mind' });
      await handle.result();
      return [handle.workflowId];
    },
  },
  {
    name: 'delete-invalid',
    async run(env, _admin, orgs) {
      const orgId = uniqueOrgId('rhdi');
      orgs.push(orgId);
      // An unknown organization: refused at validating, nothing to compensate.
      const handle = await startOrganizationDeletion(env.client, deletionRequest(orgId), { taskQueue: env.taskQueue });
      await handle.result().catch(() => undefined);
      return [handle.workflowId];
    },
  },
  {
    name: 'delete-parked-retried',
    workerEnv: async (admin) => {
      const acl = await readOnlyCacheUser(admin, 'eloquent_record');
      aclUser = acl.user;
      return acl;
    },
    async run(env, admin, orgs) {
      const orgId = await seeded(admin, orgs, 'rhdp');
      const request = deletionRequest(orgId, { storeDownAfter: '2s', parkedRetryInterval: '4s' });
      const handle = await startOrganizationDeletion(env.client, request, { taskQueue: env.taskQueue });
      await waitForDeletionStatus(
        env.client,
        handle.workflowId,
        (s) => s.parked !== undefined && s.notes.some((n) => n.startsWith('retried redis automatically')),
        180_000,
      );
      // Parked again after the automatic retry: the operator fixes the permission and asks for a retry now.
      await admin.redis.call('ACL', 'SETUSER', aclUser, 'allkeys', 'allchannels', '+@all');
      await decideParkedDeletion(env.client, orgId, 'retryNow', { by: 'record-histories', reason: 'ACL fixed' });
      const result = await handle.result();
      if (result.outcome === 'deleted')
        await terminateIfRunning(env.client, result.certificate.retention.shredWorkflowId);
      return [handle.workflowId];
    },
  },
  {
    name: 'delete-parked-abandoned',
    workerEnv: (admin) => readOnlyCacheUser(admin, 'eloquent_record'),
    async run(env, admin, orgs) {
      const orgId = await seeded(admin, orgs, 'rhda');
      const handle = await startOrganizationDeletion(
        env.client,
        deletionRequest(orgId, { storeDownAfter: '2s', parkedRetryInterval: '1m' }),
        { taskQueue: env.taskQueue },
      );
      await waitForDeletionStatus(env.client, handle.workflowId, (s) => s.parked !== undefined, 180_000);
      await decideParkedDeletion(env.client, orgId, 'abandon', { by: 'record-histories', reason: 'fixing by hand' });
      await handle.result().catch(() => undefined);
      return [handle.workflowId];
    },
  },
  {
    name: 'archive-chat',
    async run(env, admin, orgs) {
      const orgId = await seeded(admin, orgs, 'rhac');
      const prefix = organizationDataMap(orgId).queue.streams.find((s) => s.stream === 'CHAT')?.subjectPrefix ?? '';
      const js = jetstream(await admin.nats.connection());
      for (let i = 0; i < 3; i++)
        await js.publish(`${prefix}.room_x`, JSON.stringify({ from: 'user1', text: `message ${i}` }));
      const workflowId = `archive-chat-${orgId}-${Date.now()}`;
      await env.client.workflow.execute(archiveChat, {
        taskQueue: env.taskQueue,
        workflowId,
        args: [{ orgId, olderThanMs: 0 }],
      });
      return [workflowId];
    },
  },
  {
    name: 'platform-backup',
    async run(env, admin, orgs) {
      const ids = [
        await seeded(admin, orgs, 'rhpa'),
        await seeded(admin, orgs, 'rhpb'),
        await seeded(admin, orgs, 'rhpc'),
      ];
      const workflowId = `backup-platform-record-${Date.now()}`;
      // pageSize 2 forces a continue-as-new.
      await env.client.workflow.execute(backupPlatform, {
        taskQueue: env.taskQueue,
        workflowId,
        args: [{ orgIds: ids, pageSize: 2, concurrency: 2, reason: 'record', stores: ['postgres'] }],
      });
      return [workflowId];
    },
  },
];

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const at = args.indexOf('--workflows');
  const workflowsPath = at >= 0 ? args.splice(at, 2)[1] : undefined;
  const filter = args[0] ?? '';
  const scenarios = SCENARIOS.filter((s) => s.name.includes(filter));
  await mkdir(HISTORIES_DIR, { recursive: true });
  if (workflowsPath) {
    // The test workers load WORKFLOW_BUNDLE_PATH; the next jest run bundles today's code there again.
    const quiet = {
      trace() {},
      debug() {},
      info() {},
      warn() {},
      log() {},
      error: (m: string) => process.stderr.write(`${m}\n`),
    };
    const { code } = await bundleWorkflowCode({ workflowsPath: path.resolve(workflowsPath), logger: quiet });
    await writeFile(WORKFLOW_BUNDLE_PATH, code);
  } else {
    await globalSetup();
  }
  const config = loadConfig();
  const admin = createStoreClients(config);
  const workflowIds = await readWorkflowIds();
  let failed = false;
  try {
    for (const scenario of scenarios) {
      for (const file of await readdir(HISTORIES_DIR)) {
        if (!file.startsWith(`${scenario.name}.`)) continue;
        await rm(path.join(HISTORIES_DIR, file));
        delete workflowIds[file];
      }
      const special = scenario.workerEnv ? await scenario.workerEnv(admin) : undefined;
      const env = await startTestWorker(`record-${scenario.name}`, special?.env ?? {});
      const orgs: string[] = [];
      try {
        const roots = await scenario.run(env, admin, orgs);
        const files = await recordTree(env.client, scenario.name, roots, workflowIds);
        process.stdout.write(`${scenario.name}: ${files.join(', ')}\n`);
      } catch (err) {
        failed = true;
        process.stderr.write(
          `${scenario.name} FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
        );
      } finally {
        await env.shutdown();
        for (const orgId of orgs) {
          await dropSeededOrganization(admin, orgId).catch(() => undefined);
          await removeDeletionArtifacts(admin, config.backup.directory, orgId);
        }
        await special?.cleanup();
      }
    }
  } finally {
    await writeWorkflowIds(workflowIds);
    await closeStoreClients(admin);
  }
  if (failed) process.exitCode = 1;
}

void main();
