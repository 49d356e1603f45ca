import type { Pool } from 'pg';
import type { PlatformModel } from '../../platform/data-map';
import type { BackupStore } from '../../storage/backup-store';
import { withPostgresClassification } from '../postgres/errors';
import { listOrganizationsPage } from '../postgres/platform';
import { createStorageActivities, type BackupListEntry } from '../storage';

/** Default age after which an organization's newest verified backup counts as stale: 36 hours. */
export const DEFAULT_STALE_AFTER_MS = 36 * 60 * 60 * 1000;

/** Verification results that count as a verified backup (verifyBackup writes `verification.json`). */
const PASSING_RESULTS = new Set(['passed', 'ok', 'success']);

/** One organization without a recent verified backup. */
export interface StaleOrganization {
  orgId: string;
  /** Newest verified backup, when there is one. */
  newestVerifiedBackupId?: string;
  /** When that backup was verified (ISO-8601); absent when the organization has none. */
  verifiedAt?: string;
  /** When that backup was taken (ISO-8601). */
  backupStartedAt?: string;
  /** Age of the newest verified backup in milliseconds; absent when there is none. */
  ageMs?: number;
  /** Newest complete backup, verified or not, so an operator sees whether only verification is missing. */
  newestCompleteBackupId?: string;
}

/** What the staleness check reports. */
export interface StalenessReport {
  checkedAt: string;
  staleAfterMs: number;
  organizations: number;
  stale: StaleOrganization[];
}

export interface StalenessDeps {
  postgres: Pool;
  store: BackupStore;
  model: PlatformModel;
}

/** The newest backup whose verification passed, from `listBackups`' newest-first entries. */
export function newestVerified(entries: readonly BackupListEntry[]): BackupListEntry | undefined {
  return entries.find(
    (e) => e.status === 'complete' && e.verification !== undefined && PASSING_RESULTS.has(e.verification.result),
  );
}

/**
 * Every organization in PostgreSQL whose newest verified backup was taken more than `staleAfterMs`
 * ago, or that has none. Reads backups through the storage activities' `listBackups`.
 * @param staleAfterMs age in milliseconds. @default 36 hours
 */
export async function findStaleOrganizations(
  deps: StalenessDeps,
  staleAfterMs = DEFAULT_STALE_AFTER_MS,
  now = new Date(),
): Promise<StalenessReport> {
  const storage = createStorageActivities({ store: deps.store });
  const stale: StaleOrganization[] = [];
  let organizations = 0;
  let afterId = '';
  for (;;) {
    const page = await listOrganizationsPage(deps, afterId, 500);
    for (const orgId of page) {
      organizations++;
      const entries = await storage.listBackups(orgId);
      const verified = newestVerified(entries);
      const complete = entries.find((e) => e.status === 'complete');
      const ageMs = verified ? now.getTime() - Date.parse(verified.startedAt) : undefined;
      if (ageMs !== undefined && ageMs <= staleAfterMs) continue;
      stale.push({
        orgId,
        ...(verified && verified.verification
          ? {
              newestVerifiedBackupId: verified.backupId,
              verifiedAt: verified.verification.verifiedAt,
              backupStartedAt: verified.startedAt,
              ageMs,
            }
          : {}),
        ...(complete ? { newestCompleteBackupId: complete.backupId } : {}),
      });
    }
    const last = page[page.length - 1];
    if (page.length < 500 || last === undefined) break;
    afterId = last;
  }
  return { checkedAt: now.toISOString(), staleAfterMs, organizations, stale };
}

/** Activities of the staleness check and the restore drill. */
export function createStalenessActivities(deps: StalenessDeps) {
  const storage = createStorageActivities({ store: deps.store });
  return {
    /** See {@link findStaleOrganizations}. */
    async checkBackupStaleness(input: { staleAfterMs?: number } = {}): Promise<StalenessReport> {
      return withPostgresClassification(undefined, 'checkBackupStaleness', () =>
        findStaleOrganizations(deps, input.staleAfterMs ?? DEFAULT_STALE_AFTER_MS),
      );
    },
    /** Each organization with a complete backup, and its newest complete backup: what the restore drill verifies. */
    async listNewestCompleteBackups(): Promise<Array<{ orgId: string; backupId: string }>> {
      const result: Array<{ orgId: string; backupId: string }> = [];
      for (const orgId of await storage.listBackedUpOrganizations()) {
        const newest = (await storage.listBackups(orgId)).find((e) => e.status === 'complete');
        if (newest) result.push({ orgId, backupId: newest.backupId });
      }
      return result;
    },
    /**
     * One page of {@link listNewestCompleteBackups}: up to `limit` organizations after `afterOrgId`
     * (in id order) that have a complete backup, each with its newest one, so the restore drill
     * pages through them instead of receiving every organization in one result.
     */
    async listNewestCompleteBackupsPage(input: {
      afterOrgId: string;
      limit: number;
    }): Promise<Array<{ orgId: string; backupId: string }>> {
      const result: Array<{ orgId: string; backupId: string }> = [];
      const orgIds = (await storage.listBackedUpOrganizations()).filter((id) => id > input.afterOrgId).sort();
      for (const orgId of orgIds) {
        if (result.length >= input.limit) break;
        const newest = (await storage.listBackups(orgId)).find((e) => e.status === 'complete');
        if (newest) result.push({ orgId, backupId: newest.backupId });
      }
      return result;
    },
  };
}
