import type { BackupManifest } from './backup';
import type { VerificationReport } from './verification';

/** What `describeBackup` answers: the manifest of one backup and, when it was verified, the report. */
export interface BackupDescription {
  orgId: string;
  backupId: string;
  manifest: BackupManifest;
  verification?: VerificationReport;
}
