import { ensureOpsSchema } from '../../platform/ops-schema';
import { Context } from '@temporalio/activity';
import type { Pool } from 'pg';
import {
  deletionLogSchema,
  type DeletionCertificate,
  type DeletionLog,
  type DeletionOverride,
  type DeletionRecordSummary,
} from '../../contracts/deletion';
import { FailureType, permanentFailure } from '../../errors';
import { parseOrgId } from '../../platform/org-id';
import type { BackupStore } from '../../storage/backup-store';

/**
 * The deletion log.
 *
 * Decision: the log lives in TWO places and the backup store is the authority.
 * - `<backup store>/_deletions/<orgId>/deletion-log.json`: every certificate of the organization and
 *   every override, written first. The backup store is outside the platform database, so restoring
 *   a whole-platform dump (`psql < full_backup.sql`, which rewrites every schema, `eloquent_ops`
 *   included) cannot roll it back. `findDeletionRecord` and `reapplyDeletions` read only this.
 * - `eloquent_ops.deletion_certificates` / `deletion_overrides` in PostgreSQL: the same records,
 *   queryable with SQL for audits. `reapplyDeletions` writes back whatever a platform restore removed
 *   or rolled back there (`resyncDeletionCertificates`).
 * `_deletions` starts with `_`, which no organization id can, so it never collides with an
 * organization's backups and pruning skips it.
 */
export const DELETION_LOG_ROOT = '_deletions';
export const DELETION_LOG_FILE = 'deletion-log.json';
/** The organization's deletion log from the backup store; an empty log when it has none. */
export async function readDeletionLog(store: BackupStore, orgId: string): Promise<DeletionLog> {
  const raw = await store.readJson({ orgId: DELETION_LOG_ROOT, backupId: orgId }, DELETION_LOG_FILE);
  if (raw === undefined) return { formatVersion: 1, orgId, deletions: [], overrides: [] };
  const parsed = deletionLogSchema.safeParse(raw);
  if (!parsed.success) {
    throw permanentFailure(
      FailureType.ChecksumMismatch,
      `deletion log is not valid: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
      {
        store: 'storage',
        orgId,
        object: `${DELETION_LOG_ROOT}/${orgId}/${DELETION_LOG_FILE}`,
      },
    );
  }
  return parsed.data;
}

async function writeDeletionLog(store: BackupStore, log: DeletionLog): Promise<void> {
  await store.writeJson(
    { orgId: DELETION_LOG_ROOT, backupId: log.orgId },
    DELETION_LOG_FILE,
    deletionLogSchema.parse(log),
  );
}

/**
 * The deletion in effect: the latest one that passed its point of no return, unless an override
 * (a restore on purpose) was recorded for it or after it. Abandoned deletions count: the
 * organization was meant to be gone and may be half gone.
 */
export function deletionInEffect(log: DeletionLog): DeletionCertificate | undefined {
  const latest = [...log.deletions].sort((a, b) => (a.pointOfNoReturnAt < b.pointOfNoReturnAt ? -1 : 1)).at(-1);
  if (!latest) return undefined;
  const overridden = log.overrides.some(
    (o) => o.deletionRunId === latest.runId || o.recordedAt > latest.pointOfNoReturnAt,
  );
  return overridden ? undefined : latest;
}

function summary(c: DeletionCertificate): DeletionRecordSummary {
  return {
    orgId: c.orgId,
    workflowId: c.workflowId,
    runId: c.runId,
    status: c.status,
    requestedBy: c.requestedBy,
    reason: c.reason,
    pointOfNoReturnAt: c.pointOfNoReturnAt,
    ...(c.completedAt ? { completedAt: c.completedAt } : {}),
    ...(c.backup.skipped ? {} : { preDeletionBackupId: c.backup.backupId }),
    ...(c.retention.shreddedAt ? { shreddedAt: c.retention.shreddedAt } : {}),
  };
}

async function upsertCertificateRow(pool: Pool, c: DeletionCertificate): Promise<boolean> {
  const result = await pool.query(
    `INSERT INTO eloquent_ops.deletion_certificates
       (run_id, org_id, workflow_id, status, requested_by, reason, point_of_no_return_at, completed_at, shredded_at, certificate, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, now())
     ON CONFLICT (run_id) DO UPDATE SET status = EXCLUDED.status, completed_at = EXCLUDED.completed_at, shredded_at = EXCLUDED.shredded_at,
       certificate = EXCLUDED.certificate, updated_at = now()
     WHERE eloquent_ops.deletion_certificates.certificate IS DISTINCT FROM EXCLUDED.certificate`,
    [
      c.runId,
      c.orgId,
      c.workflowId,
      c.status,
      c.requestedBy,
      c.reason,
      c.pointOfNoReturnAt,
      c.completedAt ?? null,
      c.retention.shreddedAt ?? null,
      JSON.stringify(c),
    ],
  );
  return (result.rowCount ?? 0) > 0;
}

async function upsertOverrideRow(pool: Pool, o: DeletionOverride): Promise<boolean> {
  const result = await pool.query(
    `INSERT INTO eloquent_ops.deletion_overrides (org_id, restore_workflow_id, reason, deletion_run_id, recorded_at)
     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (org_id, restore_workflow_id) DO NOTHING`,
    [o.orgId, o.restoreWorkflowId, o.reason, o.deletionRunId ?? null, o.recordedAt],
  );
  return (result.rowCount ?? 0) > 0;
}

export interface DeletionLogDeps {
  postgres: Pool;
  store: BackupStore;
}

/**
 * Records a certificate (new or updated, matched by run id): first in the backup store's log (the
 * authority), then in `eloquent_ops.deletion_certificates`. Idempotent.
 */
export async function recordCertificate(deps: DeletionLogDeps, certificate: DeletionCertificate): Promise<void> {
  const log = await readDeletionLog(deps.store, certificate.orgId);
  const others = log.deletions.filter((d) => d.runId !== certificate.runId);
  await writeDeletionLog(deps.store, { ...log, deletions: [...others, certificate] });
  await ensureOpsSchema(deps.postgres);
  await upsertCertificateRow(deps.postgres, certificate);
}

/** Activities of the deletion log, used by deleteOrganization, reapplyDeletions and restoreOrganization. */
export function createDeletionLogActivities(deps: DeletionLogDeps) {
  return {
    /** Writes a deletion certificate to the log and the operations table; see {@link recordCertificate}. */
    async recordDeletionCertificate(certificate: DeletionCertificate): Promise<void> {
      await recordCertificate(deps, certificate);
    },

    /**
     * The deletion in effect for an organization, or `undefined` when it was never deleted or a
     * restore overrode the deletion. Reads the backup store's log only, so it answers the same after
     * a platform restore rolled the database back.
     */
    async findDeletionRecord(orgId: string): Promise<DeletionRecordSummary | undefined> {
      const found = deletionInEffect(await readDeletionLog(deps.store, parseOrgId(orgId)));
      return found ? summary(found) : undefined;
    },

    /**
     * Of `orgIds`, those whose recorded deletion is in effect (backup store's log only), sorted: what
     * a platform restore must delete again so no deleted organization comes back.
     */
    async deletionsInEffect(input: { orgIds: string[] }): Promise<string[]> {
      const deleted: string[] = [];
      for (const orgId of [...new Set(input.orgIds)].sort()) {
        Context.current().heartbeat({ orgId });
        if (deletionInEffect(await readDeletionLog(deps.store, parseOrgId(orgId, 'orgIds')))) deleted.push(orgId);
      }
      return deleted;
    },

    /**
     * Records that a restore brings a deleted organization back on purpose. From then on the
     * deletion is no longer in effect: restores are not refused, `reapplyDeletions` leaves the
     * organization alone and the pending crypto-shredding of its backups is skipped. Idempotent per
     * restore workflow id.
     * @throws `InvalidInput` when the reason is empty.
     */
    async recordDeletionOverride(input: {
      orgId: string;
      restoreWorkflowId: string;
      reason: string;
    }): Promise<DeletionOverride> {
      const orgId = parseOrgId(input.orgId);
      if (typeof input.reason !== 'string' || input.reason.trim() === '') {
        throw permanentFailure(
          FailureType.InvalidInput,
          'override.reason: expected a non-empty reason for restoring a deleted organization',
          { store: 'storage', orgId },
        );
      }
      const log = await readDeletionLog(deps.store, orgId);
      const existing = log.overrides.find((o) => o.restoreWorkflowId === input.restoreWorkflowId);
      const deletion = deletionInEffect(log);
      const override: DeletionOverride = existing ?? {
        orgId,
        restoreWorkflowId: input.restoreWorkflowId,
        reason: input.reason,
        recordedAt: new Date().toISOString(),
        ...(deletion ? { deletionRunId: deletion.runId } : {}),
      };
      if (!existing) await writeDeletionLog(deps.store, { ...log, overrides: [...log.overrides, override] });
      await ensureOpsSchema(deps.postgres);
      await upsertOverrideRow(deps.postgres, override);
      return override;
    },

    /**
     * Writes every certificate and override of the log back to `eloquent_ops` where the table lacks
     * it or holds another version (a platform restore rolled it back). Idempotent.
     * @returns how many rows were written.
     */
    async resyncDeletionCertificates(): Promise<{ certificates: number; overrides: number }> {
      await ensureOpsSchema(deps.postgres);
      let certificates = 0;
      let overrides = 0;
      for (const orgId of await listLoggedOrganizations(deps.store)) {
        Context.current().heartbeat({ orgId });
        const log = await readDeletionLog(deps.store, orgId);
        for (const c of log.deletions) if (await upsertCertificateRow(deps.postgres, c)) certificates++;
        for (const o of log.overrides) if (await upsertOverrideRow(deps.postgres, o)) overrides++;
      }
      return { certificates, overrides };
    },
  };
}

/** Organizations with a deletion log in the store. */
export async function listLoggedOrganizations(store: BackupStore): Promise<string[]> {
  return (await store.listBackups(DELETION_LOG_ROOT)).map((b) => b.backupId).sort();
}
