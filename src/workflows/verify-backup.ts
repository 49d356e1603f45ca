import {
  ApplicationFailure,
  CancellationScope,
  isCancellation,
  patched,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { manifestRowHashes, type BackupManifest } from '../contracts/backup';
import type { ObjectComparison, VerificationReport, VerifyBackupInput } from '../contracts/verification';
import { FailureType } from '../errors';
import type { ObjectFingerprint } from '../platform/fingerprint';
import { compareObjectFingerprints, describeDifferences } from '../platform/fingerprint-compare';
import { OperationAttribute, OrgIdAttribute } from '../search-attributes';
import { quickActivities as quick, streamingActivities as restoring } from './shared/activity-proxies';
import { rootMessage } from './shared/failures';
import { allOrStopTheRest } from './shared/stop-the-rest';
import { fingerprintingActivities, hashingActivities } from './shared/scaled-timeouts';

/** Patch id: the manifest is read before the artifacts are checked, and limits scale with it. */
export const SCALED_VERIFICATION_TIMEOUTS = 'verify-scaled-timeouts';

/** Runs begun before it fingerprinted both scratch copies only after both restores ended. */
const FINGERPRINT_EACH_STORE_WHEN_RESTORED = 'verify-fingerprint-each-store-when-restored';

/**
 * Runs begun before it let the other store's restore go on when one failed, and dropped the scratch
 * databases under it (a ClickHouse artifact that could not be loaded failed in a second, while
 * pg_restore still wrote; its connections were ended by the drop). Now the other is stopped first.
 */
const STOP_THE_OTHER_RESTORE = 'verify-stops-the-other-restore';

/** Scratch names derived from the run, so a retry reuses them and cleanup always finds them. */
export function scratchNames(runId: string): { postgres: string; clickhouse: string } {
  const suffix = runId
    .replace(/[^a-z0-9]/gi, '')
    .toLowerCase()
    .slice(0, 24);
  return { postgres: `eloquent_scratch_verify_${suffix}`, clickhouse: `eloquent_scratch_verify_${suffix}` };
}

/**
 * Proves a backup restores to exactly what it came from: checks every artifact's size and SHA-256,
 * restores into scratch databases that cannot collide with live data, fingerprints them and compares
 * with the manifest object by object, records `verification.json`, and ALWAYS drops the scratch
 * databases — passed, failed or cancelled. Fails (`VerificationFailed`) when the backup does not prove out.
 */
export async function verifyBackup(input: VerifyBackupInput): Promise<VerificationReport> {
  if (
    input === null ||
    typeof input !== 'object' ||
    (typeof input.backupId !== 'string' && !(input.latest === true && typeof input.orgId === 'string'))
  ) {
    throw ApplicationFailure.nonRetryable(
      'input: expected {"backupId": "..."} or {"orgId": "...", "latest": true}',
      FailureType.InvalidInput,
    );
  }
  const info = workflowInfo();
  const started = Date.now();
  const { orgId, backupId } = await quick.locateBackup(input);
  upsertSearchAttributes([
    { key: OrgIdAttribute, value: orgId },
    { key: OperationAttribute, value: 'verify' },
  ]);
  const scratch = scratchNames(info.runId);
  const problems: string[] = [];
  let comparisons: ObjectComparison[] = [];
  let result: VerificationReport['result'] = 'failed';
  let cancellation: unknown;
  try {
    // Time limits grow with the backup (scaled-timeouts.ts), so it reads the manifest first; runs
    // recorded before keep their fixed limits and their order.
    const scaled = patched(SCALED_VERIFICATION_TIMEOUTS);
    let manifest: BackupManifest | undefined;
    if (scaled) {
      manifest = await quick.readBackupManifest({ orgId, backupId });
      const bytes = manifest.artifacts.reduce((sum, a) => sum + a.bytes, 0);
      problems.push(...(await hashingActivities(bytes).checkBackupArtifacts({ orgId, backupId })));
    } else {
      problems.push(...(await quick.checkBackupArtifacts({ orgId, backupId })));
    }
    if (problems.length === 0) {
      const backup = manifest ?? (await quick.readBackupManifest({ orgId, backupId }));
      const rowsOf = (store: 'postgres' | 'clickhouse') =>
        (backup.fingerprint.objects ?? []).filter((o) => o.store === store).reduce((sum, o) => sum + o.rows, 0);
      const fingerprinting = (store: 'postgres' | 'clickhouse') =>
        scaled ? fingerprintingActivities(rowsOf(store)) : restoring;
      const restored = { orgId, backupId, targetOrgId: orgId };
      const restorePostgres = () =>
        backup.stores.includes('postgres')
          ? restoring.restorePostgres({ ...restored, scratchDatabase: scratch.postgres })
          : undefined;
      const restoreClickHouse = () =>
        backup.stores.includes('clickhouse')
          ? restoring.restoreClickHouse({ ...restored, scratchDatabase: scratch.clickhouse })
          : undefined;
      const fingerprintPostgres = async () =>
        backup.stores.includes('postgres')
          ? fingerprinting('postgres').fingerprintPostgresScratch({
              orgId,
              database: scratch.postgres,
              rowHash: manifestRowHashes(backup).postgresRowHash,
              privileges: manifestRowHashes(backup).postgresPrivileges,
            })
          : [];
      const fingerprintClickHouse = async () =>
        backup.stores.includes('clickhouse')
          ? fingerprinting('clickhouse').fingerprintClickHouseScratch({
              orgId,
              database: scratch.clickhouse,
              rowHash: manifestRowHashes(backup).clickhouseRowHash,
            })
          : [];
      let pg: ObjectFingerprint[];
      let ch: ObjectFingerprint[];
      if (patched(FINGERPRINT_EACH_STORE_WHEN_RESTORED)) {
        // Each store is fingerprinted as soon as its own copy is in, so the quicker store's
        // fingerprint runs beside the slower store's restore instead of after it.
        const eachStore = [
          async () => {
            await restorePostgres();
            return fingerprintPostgres();
          },
          async () => {
            await restoreClickHouse();
            return fingerprintClickHouse();
          },
        ];
        [pg = [], ch = []] = patched(STOP_THE_OTHER_RESTORE)
          ? await allOrStopTheRest(eachStore)
          : await Promise.all(eachStore.map((store) => store()));
      } else {
        await Promise.all([restorePostgres(), restoreClickHouse()]);
        [pg, ch] = await Promise.all([fingerprintPostgres(), fingerprintClickHouse()]);
      }
      comparisons = compareObjectFingerprints(backup.fingerprint.objects, [...pg, ...ch]);
      problems.push(...describeDifferences(comparisons));
    }
    result = problems.length === 0 ? 'passed' : 'failed';
  } catch (err) {
    if (!isCancellation(err)) problems.push(`restore into scratch failed: ${rootMessage(err)}`);
    else {
      result = 'cancelled';
      problems.push('verification was cancelled');
      cancellation = err;
    }
  }
  const report = await CancellationScope.nonCancellable(() => cleanUpAndRecord());
  if (cancellation !== undefined) throw cancellation;
  if (result !== 'passed') {
    throw ApplicationFailure.create({
      type: FailureType.VerificationFailed,
      message: `backup ${orgId}/${backupId} failed verification: ${problems.join('; ')}`,
      nonRetryable: true,
      details: [report],
    });
  }
  return report;

  async function cleanUpAndRecord(): Promise<VerificationReport> {
    // The scratch places must never outlive the run, whatever happened above.
    await Promise.all([
      quick.dropPostgresScratch({ database: scratch.postgres }),
      quick.dropClickHouseScratch({ database: scratch.clickhouse }),
    ]);
    const report: VerificationReport = {
      backupId,
      orgId,
      workflowId: info.workflowId,
      verifiedAt: new Date().toISOString(),
      result,
      problems,
      comparisons,
      durationMs: Date.now() - started,
      scratch,
    };
    await quick.recordVerification({ orgId, backupId, report });
    return report;
  }
}
