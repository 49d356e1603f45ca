import type { Command } from '../command';
import { abandonDeleteCommand } from './abandon-delete';
import { archiveChatCommand } from './archive-chat';
import { backupCommand } from './backup';
import { backupsCommand } from './backups';
import { cancelDeleteCommand } from './cancel-delete';
import { deleteCommand } from './delete';
import { describeCommand } from './describe';
import { helmValuesCommand } from './helm-values';
import { k8sBackupCommand } from './k8s-backup';
import { logsCommand } from './logs';
import { platformBackupCommand } from './platform-backup';
import { platformRestoreCommand, platformVerifyCommand } from './platform-restore';
import { preflightCommand } from './preflight';
import { pruneCommand } from './prune';
import { reapplyDeletionsCommand } from './reapply-deletions';
import { restoreCommand } from './restore';
import { retryDeleteCommand } from './retry-delete';
import { rollbackCommand } from './rollback';
import { rollbackPlatformCommand } from './rollback-platform';
import { schedulesCommand } from './schedules';
import { staleCommand } from './stale';
import { statusCommand } from './status';
import { verifyCommand } from './verify';

/** Every command of `eloquent-recovery`, in the order the help lists them. */
export const COMMANDS: readonly Command[] = [
  preflightCommand,
  backupCommand,
  verifyCommand,
  restoreCommand,
  deleteCommand,
  cancelDeleteCommand,
  retryDeleteCommand,
  abandonDeleteCommand,
  reapplyDeletionsCommand,
  platformBackupCommand,
  platformRestoreCommand,
  platformVerifyCommand,
  rollbackCommand,
  rollbackPlatformCommand,
  k8sBackupCommand,
  helmValuesCommand,
  statusCommand,
  logsCommand,
  backupsCommand,
  describeCommand,
  staleCommand,
  pruneCommand,
  archiveChatCommand,
  schedulesCommand,
];
