// The client SDK of eloquent-recovery: what other services import to start and follow operations.
export {
  connectRecoveryClient,
  deletionWorkflowId,
  looksLikeOrgId,
  RecoveryClient,
  WorkflowNotFoundError,
} from './recovery-client';
export {
  cancelOrganizationDeletion,
  decideParkedDeletion,
  DeletionAlreadyRunningError,
  DeletionRequestRefusedError,
  requestOfDeletion,
  deletionStatus,
  graceTimeLeftMs,
  reapplyDeletions,
  startOrganizationDeletion,
} from './deletion';
export type { DeletionRequestOutcome } from './deletion';
export type { DeletionRequestAccepted } from '../contracts/deletion';
export type { ConnectOptions, OperationStatus, StartedOperation, StartOptions } from './recovery-client';
export { InvalidRequestError } from './request-error';
export { parseDuration } from './validation';
export type { BackupOrganizationInput, BackupSummary, BackupProgress } from '../contracts/backup';
export type { ArchiveChatInput, ArchiveChatResult, ArchiveChatPlatformResult } from '../contracts/chat-archive';
export type {
  CancelDeletionSignal,
  DeleteOrganizationInput,
  RestoreMode,
  RestoreOrganizationInput,
  VerifyBackupInput,
} from '../contracts/operation-inputs';
export { WorkflowType } from '../contracts/operation-inputs';
export type { PreflightReport } from '../contracts/preflight';
export type { BackupListEntry } from '../activities/storage';
export type { StalenessReport, StaleOrganization } from '../activities/cross-store/staleness';
