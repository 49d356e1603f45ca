// The inputs of the operations the client SDK and CLI start, re-exported from the contracts their
// workflows own, so the SDK validates exactly what the workflows accept.
export type { CancelDeletionSignal, DeleteOrganizationInput } from './deletion';
export type { RestoreOrganizationInput, VerifyBackupInput } from './verification';

/** How a restore treats the target organization (see `restoreOrganization`). */
export type RestoreMode = 'into-empty' | 'replace';
export const RESTORE_MODES: readonly RestoreMode[] = ['into-empty', 'replace'];

/** Workflow type names, as strings, so callers compile before every workflow exists. */
export const WorkflowType = {
  preflight: 'platformPreflight',
  backup: 'backupOrganization',
  backupPlatform: 'backupPlatform',
  verify: 'verifyBackup',
  restore: 'restoreOrganization',
  delete: 'deleteOrganization',
  archiveChat: 'archiveChat',
  prune: 'pruneBackups',
  restoreDrill: 'restoreDrill',
  staleness: 'backupStaleness',
  kubernetes: 'backupKubernetes',
  listBackups: 'listOrganizationBackups',
  restorePlatform: 'restorePlatform',
  verifyPlatformBackup: 'verifyPlatformBackup',
  recordHelmValues: 'recordHelmValues',
  diffHelmValues: 'diffHelmValues',
  describeBackup: 'describeBackup',
} as const;

/** The query each workflow type answers with its progress; tried in order for unknown types. */
export const PROGRESS_QUERY_OF: Readonly<Record<string, string>> = {
  backupOrganization: 'backupProgress',
  deleteOrganization: 'deletionStatus',
  archiveChat: 'archiveChatProgress',
  restoreOrganization: 'restoreProgress',
  backupKubernetes: 'progress',
  rollbackDeployment: 'progress',
  rollbackPlatform: 'progress',
  restorePlatform: 'progress',
  verifyPlatformBackup: 'progress',
};
