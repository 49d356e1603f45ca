import type { BackupDescription } from '../contracts/backup-description';
import { quickActivities } from './shared/activity-proxies';

/**
 * One backup as the worker's store holds it: its manifest (artifacts with bytes, rows and SHA-256,
 * server and tool versions, key id, fingerprint) and its verification report. The CLI's
 * `describe <backupId>` runs this, so it reads the store the worker writes to, not the caller's disk.
 */
export async function describeBackup(input: { backupId: string; orgId?: string }): Promise<BackupDescription> {
  const located = await quickActivities.locateBackup(input);
  const [manifest, verification] = await Promise.all([
    quickActivities.readBackupManifest(located),
    quickActivities.readBackupVerification(located),
  ]);
  return { ...located, manifest, ...(verification ? { verification } : {}) };
}
