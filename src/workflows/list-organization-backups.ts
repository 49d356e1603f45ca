import type { BackupListEntry } from '../activities/storage';
import { quickActivities } from './shared/activity-proxies';

/**
 * The organization's backups, newest first, as the worker's backup store holds them. The SDK's
 * `listBackups` runs this, so an operator's laptop or another service reads the store the worker
 * writes to (a volume, a bucket), never a directory of its own that would answer "no backups".
 */
export async function listOrganizationBackups(input: { orgId: string }): Promise<BackupListEntry[]> {
  return quickActivities.listBackups(input.orgId);
}
