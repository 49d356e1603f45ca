import { z } from 'zod';

/**
 * Contracts of organization deletion: the workflow's input, status and result, the deletion
 * certificate and the deletion log. Deterministic code only (workflows import it).
 */

/** Input of `deleteOrganization`, as typed into the Temporal UI or sent by the CLI. */
export interface DeleteOrganizationInput {
  orgId: string;
  /** Must equal `orgId`: a typo in one of them stops the deletion before anything changes. */
  confirmOrgId: string;
  /** Who asked (a person or a service); recorded in the certificate. */
  requestedBy: string;
  /** Why; recorded in the certificate. Required: with `skipBackup` it is the recorded reason for skipping. */
  reason: string;
  /** Durable wait between marking the organization `deleting` and the point of no return, e.g. `7d`, `10s`, `0s`. @default '7d' */
  gracePeriod?: string;
  /** Delete without a pre-deletion backup; the reason is recorded. @default false */
  skipBackup?: boolean;
  /** How long the pre-deletion backup is kept before the organization's backups and data key are destroyed. @default '30d' */
  backupRetention?: string;
  /** How long one purge step may keep failing (retried with backoff) before the run parks for an operator. @default '15m' */
  storeDownAfter?: string;
  /** While parked, the step is tried again on its own this often (an operator's `retryNow` does it at once). @default '1h' */
  parkedRetryInterval?: string;
  /**
   * Set by `reapplyDeletions` only: the run id of the recorded deletion being applied again. The
   * organization then "exists" when anything of it exists in any store (a restore may have brought
   * back some stores and not the organization row).
   */
  reapplyingDeletionRunId?: string;
  /** Change nothing: return the plan (`DeletionPlan`) of what the deletion would remove. @default false */
  dryRun?: boolean;
}

/** Defaults of the optional durations of {@link DeleteOrganizationInput}. */
export const DELETION_DEFAULTS = {
  gracePeriod: '7d',
  backupRetention: '30d',
  storeDownAfter: '15m',
  parkedRetryInterval: '1h',
} as const;

/** `cancelDeletion` signal: ends a deletion during its grace period and undoes the `deleting` mark. */
export interface CancelDeletionSignal {
  by: string;
  reason: string;
}

/** `retryNow` / `abandon` signals of a parked deletion. */
export interface OperatorDecisionSignal {
  by: string;
  reason: string;
}

/** Steps of a deletion, in order; `cancelled`, `failed` and `abandoned` end it early. */
export type DeletionStep =
  | 'validating'
  | 'preflight'
  | 'backing-up'
  | 'marking-deleting'
  | 'grace-period'
  | 'sealing'
  | 'final-backup'
  | 'purging'
  | 'residue-check'
  | 'certifying'
  | 'done'
  | 'cancelled'
  | 'failed'
  | 'abandoned';

/** Purge steps after the point of no return, in the order they run. */
export type PurgeStep = 'queue' | 'redis' | 'clickhouse' | 'postgres-schemas' | 'postgres-shared-rows';
export const PURGE_STEPS: readonly PurgeStep[] = [
  'queue',
  'redis',
  'clickhouse',
  'postgres-schemas',
  'postgres-shared-rows',
];

/** What one purge step removed: named counts (`messages`, `keys`, `tables`, `rows`, `schemas`, `public.users`, …). */
export type RemovedCounts = Record<string, number>;

/** Progress of one purge step, in the status query and the certificate. */
export interface PurgeStepStatus {
  state: 'pending' | 'running' | 'done' | 'parked';
  /** Activity executions started for this step (each retried internally with backoff). */
  rounds: number;
  startedAt?: string;
  finishedAt?: string;
  removed?: RemovedCounts;
  /** Why the last round failed (the activity's own message). */
  lastError?: string;
}

/** A deletion waiting for an operator: the step, since when and why. */
export interface ParkedState {
  step: PurgeStep | 'residue-check' | 'certificate' | 'sealing' | 'final-backup';
  since: string;
  reason: string;
  /** What the operator can do. */
  signals: ['retryNow', 'abandon'];
}

/** Answer of the `deletionStatus` query. */
export interface DeletionStatus {
  orgId: string;
  workflowId: string;
  step: DeletionStep;
  requestedBy: string;
  reason: string;
  backupId?: string;
  backupSkipped?: { reason: string };
  /** Status of the organization row before it was marked `deleting` (what a cancel restores). */
  previousStatus?: string;
  sessionsRevoked?: number;
  /**
   * When the grace period ends (ISO 8601). The time left is the caller's to compute
   * (`graceTimeLeftMs` of the client): a query sees the clock of the run's last task, which stands
   * still while the run waits.
   */
  gracePeriodEndsAt?: string;
  pointOfNoReturnAt?: string;
  purge: Record<PurgeStep, PurgeStepStatus>;
  parked?: ParkedState;
  cancelled?: CancelDeletionSignal & { at: string };
  /** Notes an operator should see (a cancel that came too late, an operator decision). */
  notes: string[];
  failure?: { step: DeletionStep; message: string; compensations: string[] };
  certificate?: DeletionCertificate;
}

const removedCountsSchema = z.record(z.string(), z.number());

/** One purge step as the certificate records it. */
export const certificateStepSchema = z.object({
  step: z.enum(['queue', 'redis', 'clickhouse', 'postgres-schemas', 'postgres-shared-rows']),
  startedAt: z.string(),
  finishedAt: z.string(),
  rounds: z.number().int().nonnegative(),
  removed: removedCountsSchema,
});

/**
 * The deletion certificate: the audit record of one deletion. Written when the point of no return
 * is passed (`status: 'purging'`), completed at the end, updated when the backups are shredded.
 */
export const deletionCertificateSchema = z.object({
  formatVersion: z.literal(1),
  orgId: z.string(),
  workflowId: z.string(),
  /** The deletion run's id: the certificate's id. */
  runId: z.string(),
  status: z.enum(['purging', 'completed', 'abandoned']),
  requestedBy: z.string(),
  reason: z.string(),
  requestedAt: z.string(),
  pointOfNoReturnAt: z.string(),
  completedAt: z.string().optional(),
  /** Set when this deletion re-applied an earlier one after a restore brought the organization back. */
  reappliedDeletionRunId: z.string().optional(),
  backup: z.union([
    z.object({
      skipped: z.literal(false),
      backupId: z.string(),
      verified: z.boolean(),
      keyId: z.string().optional(),
      artifacts: z.array(
        z.object({ file: z.string(), bytes: z.number(), sha256: z.string(), rows: z.number().nullable() }),
      ),
      fingerprintObjects: z.number().int().nonnegative(),
    }),
    z.object({ skipped: z.literal(true), reason: z.string() }),
  ]),
  /**
   * The organization's last state, checked at the point of no return after its writers were
   * stopped: when anything changed since the pre-deletion backup, `backup` is the final backup
   * taken then (and `finalBackupId` names it). Absent in certificates of runs from before the check.
   */
  lastState: z
    .object({
      sealedAt: z.string(),
      /** The organization's API keys, all listed in `eloquent_ops.api_key_revocations`. */
      apiKeysRevoked: z.number().int().nonnegative(),
      preDeletionBackupId: z.string().optional(),
      /** Whether anything changed since the pre-deletion backup (unknown, so absent, when it was skipped). */
      changed: z.boolean().optional(),
      /** Fingerprint objects that differed (the deletion's own `status` mark left out). */
      changedObjects: z.array(z.string()),
      finalBackupId: z.string().optional(),
    })
    .optional(),
  /** What existed of the organization at the point of no return, one line per object. */
  foundAtPointOfNoReturn: z.array(z.string()),
  steps: z.array(certificateStepSchema),
  /** Totals removed per store. */
  removed: z.object({
    queue: removedCountsSchema,
    redis: removedCountsSchema,
    clickhouse: removedCountsSchema,
    postgres: removedCountsSchema,
  }),
  residueCheck: z
    .object({
      clean: z.boolean(),
      checkedAt: z.string(),
      /** What the first check found (purged again), one line per object; empty when clean at once. */
      found: z.array(z.string()),
      purgedAgain: z.array(z.string()),
    })
    .optional(),
  abandoned: z.object({ by: z.string(), reason: z.string(), at: z.string(), step: z.string() }).optional(),
  retention: z.object({
    backupRetention: z.string(),
    endsAt: z.string(),
    shredWorkflowId: z.string(),
    shreddedAt: z.string().optional(),
    removedBackups: z.array(z.string()).optional(),
    destroyedKeyIds: z.array(z.string()).optional(),
    /** Why shredding did not happen (the organization was restored on purpose, with an override). */
    skipped: z.string().optional(),
  }),
});
export type DeletionCertificate = z.infer<typeof deletionCertificateSchema>;

/** A restore that brought back a deleted organization on purpose. */
export const deletionOverrideSchema = z.object({
  orgId: z.string(),
  restoreWorkflowId: z.string(),
  reason: z.string(),
  recordedAt: z.string(),
  /** The deletion it overrode. */
  deletionRunId: z.string().optional(),
});
export type DeletionOverride = z.infer<typeof deletionOverrideSchema>;

/**
 * One organization's deletion log, `_deletions/<orgId>/deletion-log.json` in the backup store: every
 * certificate of it and every override. Outside the platform database, so `psql < full_backup.sql`
 * cannot overwrite it.
 */
export const deletionLogSchema = z.object({
  formatVersion: z.literal(1),
  orgId: z.string(),
  deletions: z.array(deletionCertificateSchema),
  overrides: z.array(deletionOverrideSchema),
});
export type DeletionLog = z.infer<typeof deletionLogSchema>;

/** What `findDeletionRecord` answers: the deletion in effect for an organization. */
export interface DeletionRecordSummary {
  orgId: string;
  workflowId: string;
  runId: string;
  status: DeletionCertificate['status'];
  requestedBy: string;
  reason: string;
  pointOfNoReturnAt: string;
  completedAt?: string;
  preDeletionBackupId?: string;
  shreddedAt?: string;
}

/** What `deleteOrganization` returns. */
export type DeleteOrganizationResult =
  | { outcome: 'deleted'; certificate: DeletionCertificate }
  | {
      outcome: 'cancelled';
      orgId: string;
      cancelled: CancelDeletionSignal & { at: string };
      /** Status the organization row was given back. */
      restoredStatus: string;
      backupId?: string;
      /** Sessions stay revoked: users log in again. */
      sessionsRevoked: number;
    };

/** Input of `reapplyDeletions`. */
export interface ReapplyDeletionsInput {
  /** Who runs it; recorded in every certificate of a re-applied deletion. */
  requestedBy: string;
  /** Report what would be deleted, delete nothing. @default false */
  dryRun?: boolean;
  /** Deletions run at the same time. @default 2 */
  concurrency?: number;
}

/** What `reapplyDeletions` returns. */
export interface ReapplyDeletionsResult {
  /** Organizations in the deletion log with a deletion in effect. */
  logged: number;
  /** Certificates written back to `eloquent_ops.deletion_certificates` (a platform restore had removed them). */
  certificatesResynced: number;
  /** Found again in some store and deleted again (or, in a dry run, that would be). */
  reapplied: Array<{
    orgId: string;
    found: string[];
    workflowId: string;
    result?: 'deleted' | 'failed';
    error?: string;
  }>;
  dryRun: boolean;
}

/** Workflow id of the deletion of an organization: one id, so two deletions cannot run at once. */
export function deletionWorkflowId(orgId: string): string {
  return `delete-org-${orgId}`;
}

// Kept here for the workflows that import it from the deletion contract; the format lives in duration.ts.
export { parseDurationMs } from './duration';

/** The operator requests a running deletion answers as Temporal Updates (and, for compatibility, as signals). */
export type DeletionRequest = 'cancelDeletion' | 'retryNow' | 'abandon';

/** Failure type of a request the deletion refused in its validator: the message says why. */
export const DELETION_REQUEST_REFUSED = 'DeletionRequestRefused';

/** What the `cancelDeletion`, `retryNow` and `abandon` updates answer when they accept a request. */
export interface DeletionRequestAccepted {
  request: DeletionRequest;
  workflowId: string;
  /** The step the run was at when it accepted the request. */
  step: DeletionStep;
  by: string;
  reason: string;
  /** What happens now, for the operator: "the deletion stops at the end of this step and is undone". */
  effect: string;
  /** True when the same request was already accepted earlier (a repeated cancel); nothing changed. */
  alreadyRequested?: boolean;
}
