import { randomUUID } from 'node:crypto';
import {
  Client,
  Connection,
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  type WorkflowExecutionDescription,
  type WorkflowHandle,
} from '@temporalio/client';
import type { SearchAttributePair } from '@temporalio/common';
import type { BackupListEntry } from '../activities/storage';
import type { StalenessReport } from '../activities/cross-store/staleness';
import { loadConfig, temporalConnectionOptions, type AppConfig } from '../config';
import type { BackupOrganizationInput, BackupSummary } from '../contracts/backup';
import type { ArchiveChatInput } from '../contracts/chat-archive';
import {
  PROGRESS_QUERY_OF,
  WorkflowType,
  type DeleteOrganizationInput,
  type RestoreOrganizationInput,
  type VerifyBackupInput,
} from '../contracts/operation-inputs';
import {
  validateBackupKubernetesInput,
  validateRollbackDeploymentInput,
  validateRollbackPlatformInput,
  type BackupKubernetesInput,
  type InputProblems,
  type RollbackDeploymentInput,
  type RollbackPlatformInput,
} from '../contracts/kubernetes';
import type { DeletionPlan, RestorePlan } from '../contracts/plans';
import type { BackupDescription } from '../contracts/backup-description';
import type { PreflightReport } from '../contracts/preflight';
import type { BackupPlatformInput } from '../workflows/backup-platform';
import {
  platformTargetProblems,
  type RestorePlatformInput,
  type VerifyPlatformBackupInput,
} from '../contracts/platform-backup';
import type {
  DiffHelmValuesInput,
  DiffHelmValuesResult,
  RecordHelmValuesInput,
  RecordHelmValuesResult,
} from '../contracts/helm-values';
import { historyLines, type HistoryLine } from './history-lines';
import type { PruneBackupsInput, PruneBackupsResult } from '../workflows/prune-backups';
import { deletionWorkflowId, type DeletionStatus } from '../contracts/deletion';
import {
  DeletionAlreadyRunningError,
  graceTimeLeftMs,
  requestOfDeletion,
  type DeletionRequestOutcome,
} from './deletion';
import { InvalidRequestError } from './request-error';
import { isOrgId } from '../platform/org-id';

export { deletionWorkflowId };
import { OperationAttribute, OrgIdAttribute, type OperationName } from '../search-attributes';
import {
  requireBackupId,
  requireOrgId,
  requireRequestId,
  validateBackupInput,
  validateCancelDeletion,
  validateDeleteInput,
  validateRestoreInput,
  validateVerifyInput,
} from './validation';

/** Options every `start…` call takes. */
export interface StartOptions {
  /**
   * The caller's id for this request. The same id starts one workflow, not two: a repeated call
   * returns the run the first call started (running or finished). A random id when absent.
   */
  requestId?: string;
  /** Who asked (a service name or a person), recorded in the run's memo. */
  requestedBy?: string;
}

/** A started (or already running) operation. */
export interface StartedOperation {
  workflowId: string;
  /** Run id of the run the request id maps to. */
  runId: string;
  operation: OperationName;
  handle: WorkflowHandle;
}

/** What `getOperationStatus` reports about one run. */
export interface OperationStatus {
  workflowId: string;
  runId: string;
  type: string;
  /** `RUNNING`, `COMPLETED`, `FAILED`, `CANCELLED`, `TERMINATED`, `CONTINUED_AS_NEW`, `TIMED_OUT`. */
  status: string;
  startTime: string;
  closeTime?: string;
  orgId?: string;
  operation?: string;
  /** The answer of the workflow's progress query while it runs; absent when it has none. */
  progress?: unknown;
  /** A deletion in its grace period: milliseconds left, computed here from its `gracePeriodEndsAt`. */
  gracePeriodLeftMs?: number;
  memo?: Record<string, unknown>;
}

/** Options of {@link connectRecoveryClient}. */
export interface ConnectOptions {
  /** @default loadConfig() from the environment */
  config?: AppConfig;
  /** Task queue of the worker. @default config.temporal.taskQueue */
  taskQueue?: string;
}

function firstString(value: unknown): string | undefined {
  return Array.isArray(value) && typeof value[0] === 'string' ? value[0] : undefined;
}

/**
 * The typed SDK other services use to run backup, verification, restore and deletion on the
 * eloquent-recovery worker. Every `start…` validates its input before anything is sent and
 * throws `InvalidRequestError` naming the field and the rule.
 */
export class RecoveryClient {
  constructor(
    /** The underlying Temporal client, for anything this SDK does not cover. */
    readonly temporal: Client,
    private readonly connection: Connection,
    readonly config: AppConfig,
    readonly taskQueue: string,
  ) {}

  /** Backs up one organization. Workflow id `backup-<orgId>-<requestId>`. */
  async startBackup(input: BackupOrganizationInput, options: StartOptions = {}): Promise<StartedOperation> {
    const valid = validateBackupInput(input);
    const requestId = requireRequestId(options.requestId ?? randomUUID());
    return this.start(
      WorkflowType.backup,
      `backup-${valid.orgId}-${requestId}`,
      valid,
      'backup',
      valid.orgId,
      requestId,
      options,
      `backup of ${valid.orgId}`,
    );
  }

  /** Verifies one backup, or the newest of an organization. Workflow id `verify-<backupId|orgId>-<requestId>`. */
  async startVerification(input: VerifyBackupInput, options: StartOptions = {}): Promise<StartedOperation> {
    const valid = validateVerifyInput(input);
    const requestId = requireRequestId(options.requestId ?? randomUUID());
    const subject = 'backupId' in valid ? valid.backupId : `${valid.orgId}-latest`;
    const orgId = valid.orgId;
    return this.start(
      WorkflowType.verify,
      `verify-${subject}-${requestId}`,
      valid,
      'verify',
      orgId,
      requestId,
      options,
      `verification of ${subject}`,
    );
  }

  /**
   * Restores a backup — by id, or with `{orgId, latest: true}` the organization's newest verified
   * one — into its organization or (`targetOrgId`) a clone. Workflow id `restore-<target>-<requestId>`.
   */
  async startRestore(input: RestoreOrganizationInput, options: StartOptions = {}): Promise<StartedOperation> {
    const valid = validateRestoreInput(input);
    const requestId = requireRequestId(options.requestId ?? randomUUID());
    const target = valid.targetOrgId ?? valid.orgId;
    const source = valid.latest ? `the newest verified backup of ${valid.orgId ?? '?'}` : (valid.backupId ?? '?');
    return this.start(
      WorkflowType.restore,
      `restore-${target ?? valid.backupId ?? 'latest'}-${requestId}`,
      valid,
      'restore',
      target,
      requestId,
      options,
      `restore of ${source}${target ? ` into ${target}` : ''} (${valid.mode})`,
    );
  }

  /**
   * The dry run of a restore: what it would create (objects, rows), read (artifacts, bytes) and
   * replace, the names and id it maps, and why it would refuse. Changes nothing; waits for the plan.
   * Workflow id `plan-restore-<target>-<uuid>`.
   */
  async planRestore(input: RestoreOrganizationInput): Promise<RestorePlan> {
    const valid = validateRestoreInput({ ...input, dryRun: true });
    const target = valid.targetOrgId ?? valid.orgId;
    return this.temporal.workflow.execute<(input: RestoreOrganizationInput) => Promise<RestorePlan>>(
      WorkflowType.restore,
      {
        taskQueue: this.taskQueue,
        workflowId: `plan-restore-${target ?? valid.backupId ?? 'latest'}-${randomUUID()}`,
        args: [valid],
        // OrgId only: a plan is no operation other runs must wait for.
        ...(target ? { typedSearchAttributes: [{ key: OrgIdAttribute, value: target }] } : {}),
        staticSummary: `dry run of a restore${target ? ` into ${target}` : ''}`,
      },
    );
  }

  /**
   * The dry run of a deletion: what each purge step would remove (objects, rows, bytes, counted as
   * the certificate counts), the sessions revoked, the backup taken first, and why it would refuse.
   * Changes nothing; waits for the plan. Workflow id `plan-delete-<orgId>-<uuid>`.
   */
  async planDeletion(input: DeleteOrganizationInput): Promise<DeletionPlan> {
    const valid = validateDeleteInput({ ...input, dryRun: true });
    return this.temporal.workflow.execute<(input: DeleteOrganizationInput) => Promise<DeletionPlan>>(
      WorkflowType.delete,
      {
        taskQueue: this.taskQueue,
        workflowId: `plan-delete-${valid.orgId}-${randomUUID()}`,
        args: [valid],
        typedSearchAttributes: [{ key: OrgIdAttribute, value: valid.orgId }],
        staticSummary: `dry run of the deletion of ${valid.orgId}`,
      },
    );
  }

  /**
   * Starts the deletion of an organization. Its workflow id is `delete-org-<orgId>`, so there is at
   * most one deletion per organization: a repeated call with the same request id returns it; any
   * other call while it runs fails with {@link DeletionAlreadyRunningError} ("already running: <id>").
   */
  async startDeletion(input: DeleteOrganizationInput, options: StartOptions = {}): Promise<StartedOperation> {
    const valid = validateDeleteInput(input);
    const requestId = requireRequestId(options.requestId ?? randomUUID());
    const workflowId = deletionWorkflowId(valid.orgId);
    // A finished deletion never blocks the next one (after a restore with override): ALLOW_DUPLICATE.
    const started = await this.start(
      WorkflowType.delete,
      workflowId,
      valid,
      'delete',
      valid.orgId,
      requestId,
      { requestedBy: valid.requestedBy, ...options },
      `deletion of ${valid.orgId}: ${valid.reason}`,
      'ALLOW_DUPLICATE',
    );
    const description = await started.handle.describe();
    if (description.memo?.requestId !== requestId) throw new DeletionAlreadyRunningError(workflowId);
    return started;
  }

  /** `kubectl rollout undo` as a workflow. Workflow id `rollback-deployment-<service>-<requestId>`. */
  async startDeploymentRollback(input: RollbackDeploymentInput, options: StartOptions = {}): Promise<StartedOperation> {
    rejectProblems(validateRollbackDeploymentInput(input));
    const requestId = requireRequestId(options.requestId ?? randomUUID());
    return this.start(
      'rollbackDeployment',
      `rollback-deployment-${input.service}-${requestId}`,
      input,
      'kubernetes',
      undefined,
      requestId,
      options,
      `rollback of deployment ${input.service}`,
    );
  }

  /** `helm rollback` as a workflow. Workflow id `rollback-platform-<requestId>`. */
  async startPlatformRollback(input: RollbackPlatformInput, options: StartOptions = {}): Promise<StartedOperation> {
    rejectProblems(validateRollbackPlatformInput(input));
    const requestId = requireRequestId(options.requestId ?? randomUUID());
    return this.start(
      'rollbackPlatform',
      `rollback-platform-${requestId}`,
      input,
      'kubernetes',
      undefined,
      requestId,
      options,
      `helm rollback to revision ${input.revision ?? 'previous'}`,
    );
  }

  /** A Velero backup of the cluster state. Workflow id `backup-kubernetes-<requestId>`. */
  async startKubernetesBackup(
    input: BackupKubernetesInput = {},
    options: StartOptions = {},
  ): Promise<StartedOperation> {
    rejectProblems(validateBackupKubernetesInput(input));
    const requestId = requireRequestId(options.requestId ?? randomUUID());
    return this.start(
      'backupKubernetes',
      `backup-kubernetes-${requestId}`,
      input,
      'kubernetes',
      undefined,
      requestId,
      options,
      'Velero backup of the cluster state',
    );
  }

  /**
   * The runbook's daily full backup: every database of PostgreSQL and ClickHouse whole (restorable
   * into an empty cluster with {@link startPlatformRestore}), then every organization's backup.
   * Workflow id `backup-platform-<requestId>`.
   */
  async startPlatformBackup(
    input: Pick<BackupPlatformInput, 'reason' | 'stores' | 'verify' | 'concurrency'> = {},
    options: StartOptions = {},
  ): Promise<StartedOperation> {
    const requestId = requireRequestId(options.requestId ?? randomUUID());
    return this.start(
      WorkflowType.backupPlatform,
      `backup-platform-${requestId}`,
      input,
      'backup',
      undefined,
      requestId,
      options,
      'whole-platform backup',
    );
  }

  /**
   * Restores a platform backup into an EMPTY PostgreSQL cluster and ClickHouse server, re-applies
   * recorded deletions there and proves every fingerprint. Workflow id `restore-platform-<requestId>`.
   */
  async startPlatformRestore(input: RestorePlatformInput, options: StartOptions = {}): Promise<StartedOperation> {
    rejectProblems(platformTargetProblems(input));
    const requestId = requireRequestId(options.requestId ?? randomUUID());
    return this.start(
      WorkflowType.restorePlatform,
      `restore-platform-${requestId}`,
      input,
      'restore',
      undefined,
      requestId,
      options,
      `platform restore of ${input.backupId}`,
    );
  }

  /** Restores a platform backup into empty scratch servers and compares; empties them again. Workflow id `verify-platform-<backupId>-<requestId>`. */
  async startPlatformVerification(
    input: VerifyPlatformBackupInput,
    options: StartOptions = {},
  ): Promise<StartedOperation> {
    rejectProblems(platformTargetProblems(input));
    const requestId = requireRequestId(options.requestId ?? randomUUID());
    return this.start(
      WorkflowType.verifyPlatformBackup,
      `verify-platform-${input.backupId}-${requestId}`,
      input,
      'verify',
      undefined,
      requestId,
      options,
      `verification of platform backup ${input.backupId}`,
    );
  }

  /** Keeps the values of every revision of a Helm release not kept yet (secrets redacted), through the worker. */
  async recordHelmValues(input: RecordHelmValuesInput = {}): Promise<RecordHelmValuesResult> {
    return this.temporal.workflow.execute<(input: RecordHelmValuesInput) => Promise<RecordHelmValuesResult>>(
      WorkflowType.recordHelmValues,
      {
        taskQueue: this.taskQueue,
        workflowId: `helm-values-record-${randomUUID()}`,
        args: [input],
        typedSearchAttributes: [{ key: OperationAttribute, value: 'kubernetes' }],
      },
    );
  }

  /** What changed between the kept values of two revisions of a Helm release. */
  async diffHelmValues(input: DiffHelmValuesInput): Promise<DiffHelmValuesResult> {
    return this.temporal.workflow.execute<(input: DiffHelmValuesInput) => Promise<DiffHelmValuesResult>>(
      WorkflowType.diffHelmValues,
      {
        taskQueue: this.taskQueue,
        workflowId: `helm-values-diff-${randomUUID()}`,
        args: [input],
        typedSearchAttributes: [{ key: OperationAttribute, value: 'kubernetes' }],
      },
    );
  }

  /**
   * Cancels the organization's deletion (`delete-org-<orgId>`) during its grace period, as an Update:
   * resolves with what the run accepted.
   * @throws DeletionRequestRefusedError with the run's reason (the point of no return was passed, it ended).
   */
  async cancelDeletion(orgIdInput: string, input: { by: string; reason: string }): Promise<DeletionRequestOutcome> {
    const orgId = requireOrgId(orgIdInput, 'orgId');
    return requestOfDeletion(this.temporal, orgId, 'cancelDeletion', validateCancelDeletion(input));
  }

  /**
   * `retryNow` (try the parked step again now) or `abandon` (stop, leaving what is not yet purged)
   * for the organization's parked deletion, as an Update.
   * @throws DeletionRequestRefusedError when the run is not parked.
   */
  async decideParkedDeletion(
    orgIdInput: string,
    decision: 'retryNow' | 'abandon',
    input: { by: string; reason: string },
  ): Promise<DeletionRequestOutcome> {
    const orgId = requireOrgId(orgIdInput, 'orgId');
    return requestOfDeletion(this.temporal, orgId, decision, validateCancelDeletion(input));
  }

  /** Archives chat (one organization, or all). Workflow id `archive-chat-<org|all>-<requestId>`. */
  async startChatArchive(input: ArchiveChatInput = {}, options: StartOptions = {}): Promise<StartedOperation> {
    const orgId = input.orgId === undefined ? undefined : requireOrgId(input.orgId, 'orgId');
    const requestId = requireRequestId(options.requestId ?? randomUUID());
    return this.start(
      WorkflowType.archiveChat,
      `archive-chat-${orgId ?? 'all'}-${requestId}`,
      { ...input, ...(orgId ? { orgId } : {}) },
      'archive-chat',
      orgId,
      requestId,
      options,
      `chat archival of ${orgId ?? 'every organization'}`,
    );
  }

  /**
   * Applies the retention policy (`pruneBackups`) on the worker's store and waits for the report;
   * with `dryRun` it only lists what would go. Workflow id `prune-<org|all>-<uuid>`.
   */
  async pruneBackups(input: PruneBackupsInput): Promise<PruneBackupsResult> {
    const orgId = input.orgId !== undefined ? requireOrgId(input.orgId, 'orgId') : undefined;
    for (const field of ['keepLast', 'keepDaily', 'keepWeekly'] as const) {
      const value = input[field];
      if (value !== undefined && (!Number.isInteger(value) || value < 0))
        throw new InvalidRequestError(field, `expected a whole number >= 0; got ${JSON.stringify(value)}`);
    }
    return this.temporal.workflow.execute<(input: PruneBackupsInput) => Promise<PruneBackupsResult>>(
      WorkflowType.prune,
      {
        taskQueue: this.taskQueue,
        workflowId: `prune-${orgId ?? 'all'}-${randomUUID()}`,
        args: [{ ...input, ...(orgId ? { orgId } : {}) }],
        typedSearchAttributes: [
          { key: OperationAttribute, value: 'prune' },
          ...(orgId ? [{ key: OrgIdAttribute, value: orgId }] : []),
        ],
      },
    );
  }

  /** Probes every store through the worker; resolves with versions and latencies, rejects naming the store that did not answer. */
  async preflight(): Promise<PreflightReport> {
    return this.temporal.workflow.execute<() => Promise<PreflightReport>>(WorkflowType.preflight, {
      taskQueue: this.taskQueue,
      workflowId: `preflight-${new Date().toISOString()}`,
      args: [],
      typedSearchAttributes: [{ key: OperationAttribute, value: 'preflight' }],
    });
  }

  /** Every organization whose newest verified backup is older than `staleAfterMs` (default 36 h), checked by the worker. */
  async checkStaleness(staleAfterMs?: number): Promise<StalenessReport> {
    return this.temporal.workflow.execute<(input: { staleAfterMs?: number }) => Promise<StalenessReport>>(
      WorkflowType.staleness,
      {
        taskQueue: this.taskQueue,
        workflowId: `staleness-${new Date().toISOString()}`,
        args: [staleAfterMs === undefined ? {} : { staleAfterMs }],
        typedSearchAttributes: [{ key: OperationAttribute, value: 'preflight' }],
      },
    );
  }

  /** Status of one run (the latest run of the workflow id), with its progress while it runs. */
  async getOperationStatus(workflowId: string): Promise<OperationStatus> {
    const handle = this.temporal.workflow.getHandle(workflowId);
    const description = await handle.describe();
    const status = statusOf(description);
    if (status.status === 'RUNNING') {
      const query = PROGRESS_QUERY_OF[status.type];
      if (query !== undefined) {
        try {
          status.progress = await handle.query(query);
          const left =
            status.type === WorkflowType.delete ? graceTimeLeftMs(status.progress as DeletionStatus) : undefined;
          if (left !== undefined) status.gracePeriodLeftMs = left;
        } catch {
          // A run that has not yet registered its query handler answers nothing yet; that is no error.
        }
      }
    }
    return status;
  }

  /** The organization's runs of every operation, newest first (Temporal visibility, by the `OrgId` search attribute). */
  async listOperations(orgIdInput: string, limit = 20): Promise<OperationStatus[]> {
    const orgId = requireOrgId(orgIdInput, 'orgId');
    const result: OperationStatus[] = [];
    // The id passed the organization id rule: no quote can be inside it.
    for await (const run of this.temporal.workflow.list({
      query: `OrgId = '${orgId}' ORDER BY StartTime DESC`,
      pageSize: limit,
    })) {
      result.push({
        workflowId: run.workflowId,
        runId: run.runId,
        type: run.type,
        status: run.status.name,
        startTime: run.startTime.toISOString(),
        ...(run.closeTime ? { closeTime: run.closeTime.toISOString() } : {}),
        orgId,
        ...(firstString(run.searchAttributes?.Operation)
          ? { operation: firstString(run.searchAttributes?.Operation) }
          : {}),
      });
      if (result.length >= limit) break;
    }
    return result;
  }

  /**
   * The organization's backups, newest first, read by the worker from its backup store (a short
   * workflow, `list-backups-<orgId>-<uuid>`): the caller's own disk or BACKUP_DIR plays no part.
   */
  async listBackups(orgIdInput: string): Promise<BackupListEntry[]> {
    const orgId = requireOrgId(orgIdInput, 'orgId');
    return this.temporal.workflow.execute<(input: { orgId: string }) => Promise<BackupListEntry[]>>(
      WorkflowType.listBackups,
      {
        taskQueue: this.taskQueue,
        workflowId: `list-backups-${orgId}-${randomUUID()}`,
        args: [{ orgId }],
        typedSearchAttributes: [{ key: OrgIdAttribute, value: orgId }],
      },
    );
  }

  /**
   * One backup — manifest (artifacts, rows, bytes, checksums, versions, key id) and verification —
   * read by the worker from its store (`describe-backup-<backupId>-<uuid>`).
   * @throws a workflow failure `UnknownBackup` when no complete backup has the id.
   */
  async describeBackup(backupIdInput: string, orgIdInput?: string): Promise<BackupDescription> {
    const backupId = requireBackupId(backupIdInput);
    const orgId = orgIdInput !== undefined ? requireOrgId(orgIdInput, 'orgId') : undefined;
    return this.temporal.workflow.execute<(input: { backupId: string; orgId?: string }) => Promise<BackupDescription>>(
      WorkflowType.describeBackup,
      {
        taskQueue: this.taskQueue,
        workflowId: `describe-backup-${backupId}-${randomUUID()}`,
        args: [{ backupId, ...(orgId ? { orgId } : {}) }],
        ...(orgId ? { typedSearchAttributes: [{ key: OrgIdAttribute, value: orgId }] } : {}),
      },
    );
  }

  /**
   * The run's history as readable lines, oldest first: steps started, completed, failed (with the
   * failure's message), timers, signals, updates and children. The latest run of the id.
   */
  async workflowLog(workflowId: string): Promise<HistoryLine[]> {
    return historyLines(await this.temporal.workflow.getHandle(workflowId).fetchHistory());
  }

  /** Waits for the run of `workflowId` to finish; resolves with its result, rejects with its failure. */
  async waitForResult<T = unknown>(workflowId: string): Promise<T> {
    return this.temporal.workflow.getHandle(workflowId).result() as Promise<T>;
  }

  /** Typed wait for a backup. */
  async waitForBackup(operation: StartedOperation): Promise<BackupSummary> {
    return this.waitForResult<BackupSummary>(operation.workflowId);
  }

  async close(): Promise<void> {
    await this.connection.close();
  }

  private async start(
    type: string,
    workflowId: string,
    input: object,
    operation: OperationName,
    orgId: string | undefined,
    requestId: string,
    options: StartOptions,
    summary: string,
    reusePolicy: 'REJECT_DUPLICATE' | 'ALLOW_DUPLICATE' = 'REJECT_DUPLICATE',
  ): Promise<StartedOperation> {
    const searchAttributes: SearchAttributePair[] = [{ key: OperationAttribute, value: operation }];
    if (orgId !== undefined) searchAttributes.push({ key: OrgIdAttribute, value: orgId });
    try {
      const handle = await this.temporal.workflow.start(type, {
        taskQueue: this.taskQueue,
        workflowId,
        args: [input],
        // One request id, one workflow: a running one is joined, a finished one is not started again.
        workflowIdConflictPolicy: 'USE_EXISTING',
        workflowIdReusePolicy: reusePolicy,
        typedSearchAttributes: searchAttributes,
        memo: { requestId, summary, ...(options.requestedBy ? { requestedBy: options.requestedBy } : {}) },
        staticSummary: summary,
      });
      const runId = handle.firstExecutionRunId;
      return { workflowId, runId, operation, handle: this.temporal.workflow.getHandle(workflowId, runId) };
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
      const handle = this.temporal.workflow.getHandle(workflowId);
      const description = await handle.describe();
      return {
        workflowId,
        runId: description.runId,
        operation,
        handle: this.temporal.workflow.getHandle(workflowId, description.runId),
      };
    }
  }
}

function statusOf(d: WorkflowExecutionDescription): OperationStatus {
  return {
    workflowId: d.workflowId,
    runId: d.runId,
    type: d.type,
    status: d.status.name,
    startTime: d.startTime.toISOString(),
    ...(d.closeTime ? { closeTime: d.closeTime.toISOString() } : {}),
    ...(d.typedSearchAttributes.get(OrgIdAttribute) ? { orgId: d.typedSearchAttributes.get(OrgIdAttribute) } : {}),
    ...(d.typedSearchAttributes.get(OperationAttribute)
      ? { operation: d.typedSearchAttributes.get(OperationAttribute) }
      : {}),
    ...(d.memo ? { memo: d.memo } : {}),
  };
}

/** True when `value` is an organization id rather than a workflow id (workflow ids always contain "-"). */
export function looksLikeOrgId(value: string): boolean {
  return isOrgId(value);
}

/** Thrown by `getOperationStatus` for an unknown workflow id; re-exported for callers' `instanceof`. */
export { WorkflowNotFoundError };

/**
 * Connects to the Temporal server of the configuration and returns the SDK.
 * @throws when the server cannot be reached (the connection error, naming the address).
 */
export async function connectRecoveryClient(options: ConnectOptions = {}): Promise<RecoveryClient> {
  const config = options.config ?? loadConfig();
  const connection = await Connection.connect(temporalConnectionOptions(config.temporal));
  const temporal = new Client({ connection, namespace: config.temporal.namespace });
  return new RecoveryClient(temporal, connection, config, options.taskQueue ?? config.temporal.taskQueue);
}

/** Rejects Kubernetes input before anything is sent, naming the first bad field. */
function rejectProblems(problems: InputProblems): void {
  const first = problems[0];
  if (first !== undefined) {
    const field = /^[A-Za-z[\]0-9]+/.exec(first)?.[0] ?? 'input';
    throw new InvalidRequestError(field, problems.join('; '));
  }
}
