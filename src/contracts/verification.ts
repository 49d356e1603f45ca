/** Input of `verifyBackup`: a backup by id, or the newest of an organization. */
export interface VerifyBackupInput {
  backupId?: string;
  orgId?: string;
  latest?: boolean;
}

/** One object compared between the manifest and the restored scratch copy. */
export interface ObjectComparison {
  object: string;
  store: string;
  expected?: { rows: number; hash: string };
  actual?: { rows: number; hash: string };
  equal: boolean;
}

/** `verification.json`: what verification found, written beside the manifest. */
export interface VerificationReport {
  backupId: string;
  orgId: string;
  workflowId: string;
  verifiedAt: string;
  result: 'passed' | 'failed' | 'cancelled';
  /** Why it failed, when it did: checksum problems, a restore error, or differing objects. */
  problems: string[];
  comparisons: ObjectComparison[];
  durationMs: number;
  scratch: { postgres: string; clickhouse: string };
}

/** Input of `restoreOrganization`: a backup by id, or (`orgId` with `latest`) the organization's newest verified one. */
export interface RestoreOrganizationInput {
  /** The backup to restore; absent with `latest`. */
  backupId?: string;
  /** The backup's organization; found by searching the store when absent. Required with `latest`. */
  orgId?: string;
  /** Restore the newest backup of `orgId` whose verification passed (as `verifyBackup` takes `latest`). */
  latest?: boolean;
  /** The organization to restore as; the backup's own by default. Another id makes a clone. */
  targetOrgId?: string;
  /** `into-empty` refuses a target with any data; `replace` backs the target up first, then replaces it. */
  mode?: 'into-empty' | 'replace';
  /** Needed to restore an organization that has a deletion record; the reason is recorded. */
  override?: { reason: string };
  /**
   * Roles the backup's privileges name, restored under other names: `{"app": "app_eu"}`. A role the
   * target server lacks and this does not map refuses the restore before anything changes.
   */
  roleMapping?: Record<string, string>;
  /** Change nothing: return the plan (`RestorePlan`) of what the restore would create and replace. */
  dryRun?: boolean;
}

export interface RestoreResult {
  backupId: string;
  sourceOrgId: string;
  targetOrgId: string;
  mode: 'into-empty' | 'replace';
  safetyBackupId?: string;
  comparisons: ObjectComparison[];
  durationMs: number;
}
