// The whole-platform dump step of backupPlatform, kept apart from its organization fan-out.
// Workflow code: deterministic, types-only imports of activities.
import type { BackupStoreName } from '../contracts/backup';
import type { PlatformPartSummary } from '../contracts/platform-backup';
import { ACTIVITY_KINDS, activityProxies } from './shared/activity-proxies';

const dumps = activityProxies(ACTIVITY_KINDS.streaming);
const commits = activityProxies(ACTIVITY_KINDS.backupStore);

/** Marker of runs that write the platform dump (runs of older code wrote the globals alone). */
export const PLATFORM_DUMP_PATCH = 'platform-dump-v1';

export interface PlatformDumpSummary {
  backupId: string;
  parts: PlatformPartSummary[];
  artifacts: number;
  bytes: number;
  organizations: string[];
}

/**
 * The runbook's daily full backup: every PostgreSQL database with the cluster's globals and every
 * ClickHouse database, stores in parallel, into `_platform/<backupId>`; then the manifest, last,
 * after every artifact was checked against its recorded checksum.
 */
export async function dumpWholePlatform(
  backupId: string,
  stores: readonly BackupStoreName[],
  reason: string,
  workflowId: string,
): Promise<PlatformDumpSummary> {
  const parts = await Promise.all(
    stores.map((store) =>
      store === 'postgres' ? dumps.dumpPlatformPostgres({ backupId }) : dumps.dumpPlatformClickHouse({ backupId }),
    ),
  );
  const committed = await commits.commitPlatformBackup({ backupId, stores: [...stores], reason, workflowId });
  return { ...committed, parts };
}
