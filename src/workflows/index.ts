// Every workflow the worker registers. Workflow code is bundled and sandboxed: import only
// deterministic code here (no store clients, no node built-ins).
export { platformPreflight } from './platform-preflight';
export { backupOrganization, backupProgressQuery } from './backup-organization';
export { backupPlatform } from './backup-platform';
export { restorePlatform, platformRestoreProgressQuery } from './restore-platform';
export { verifyPlatformBackup } from './verify-platform-backup';
export { pruneBackups } from './prune-backups';
export { archiveChat, archiveChatProgressQuery } from './archive-chat';
export { restoreDrill } from './restore-drill';
export { backupStaleness } from './backup-staleness';
export { verifyBackup } from './verify-backup';
export {
  deleteOrganization,
  deletionStatusQuery,
  cancelDeletionSignal,
  retryNowSignal,
  abandonSignal,
} from './delete-organization';
export { shredOrganizationBackups } from './shred-organization-backups';
export { reapplyDeletions } from './reapply-deletions';
export { restoreOrganization, restoreProgressQuery } from './restore-organization';
export { rollbackDeployment } from './rollback-deployment';
export { rollbackPlatform } from './rollback-platform';
export { backupKubernetes } from './backup-kubernetes';
export { recordHelmValues, diffHelmValues } from './helm-values';
export { listOrganizationBackups } from './list-organization-backups';
export { describeBackup } from './describe-backup';
