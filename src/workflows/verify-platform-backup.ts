import { CancellationScope } from '@temporalio/workflow';
import type { VerifyPlatformBackupInput, VerifyPlatformBackupResult } from '../contracts/platform-backup';
import { ACTIVITY_KINDS, activityProxies } from './shared/activity-proxies';
import {
  assertTargetsEmpty,
  compareWithBackup,
  readPlatformBackups,
  refusePlatformInput,
  restoreBothStores,
  startPlatformOperation,
} from './restore-platform';

const quick = activityProxies(ACTIVITY_KINDS.quick);

/**
 * Proves a platform backup restores: into scratch servers (an empty PostgreSQL cluster and an empty
 * ClickHouse server, checked before anything is written), then compares every organization's
 * fingerprint and every object outside the organizations with the backup's. No deletion is applied:
 * the backup is compared with itself. The scratch servers are emptied again whatever happens, so
 * nothing restored outlives the run; the report is written beside the manifest.
 */
export async function verifyPlatformBackup(input: VerifyPlatformBackupInput): Promise<VerifyPlatformBackupResult> {
  const moveTo = startPlatformOperation('verifyPlatformBackup');
  refusePlatformInput('verifyPlatformBackup', input);
  const backupId = input.backupId;
  const clickhouseBackupId = input.clickhouseBackupId ?? backupId;
  const target = { postgresUrl: input.postgresUrl, clickhouseUrl: input.clickhouseUrl };

  moveTo(`reading platform backup ${backupId}`);
  await readPlatformBackups(backupId, clickhouseBackupId);
  moveTo('checking that the scratch servers are empty');
  await assertTargetsEmpty(target);
  let compared: Awaited<ReturnType<typeof compareWithBackup>>;
  try {
    moveTo('restoring into the scratch servers');
    await restoreBothStores(backupId, clickhouseBackupId, target, input.jobs ?? 2);
    moveTo('comparing fingerprints with the backup');
    compared = await compareWithBackup(backupId, clickhouseBackupId, target, []);
  } finally {
    moveTo('emptying the scratch servers');
    // Also after a failure or a cancellation: what was restored must not outlive the run.
    await CancellationScope.nonCancellable(() =>
      Promise.all([
        quick.resetScratchPostgresCluster({ targetUrl: target.postgresUrl }),
        quick.resetScratchClickHouseServer({ targetUrl: target.clickhouseUrl }),
      ]),
    );
  }
  const differences = [
    ...compared.organizations.flatMap((o) => (o.differences ?? []).map((d) => `${o.orgId}: ${d}`)),
    ...compared.platformDifferences,
  ];
  moveTo('recording the verification');
  const result: VerifyPlatformBackupResult = {
    backupId,
    clickhouseBackupId,
    passed: differences.length === 0,
    organizations: compared.organizations.length,
    platformObjects: compared.platformObjects,
    differences,
    // Workflow time: deterministic on replay.
    verifiedAt: new Date().toISOString(),
  };
  await quick.recordPlatformVerification({ backupId, report: result });
  moveTo('done');
  return result;
}
