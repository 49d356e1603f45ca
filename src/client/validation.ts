import { BACKUP_STORES, type BackupOrganizationInput, type BackupStoreName } from '../contracts/backup';
import { durationMsOrProblem } from '../contracts/duration';
import {
  RESTORE_MODES,
  type DeleteOrganizationInput,
  type RestoreOrganizationInput,
  type VerifyBackupInput,
} from '../contracts/operation-inputs';
import { isOrgId, ORG_ID_RULE } from '../platform/org-id';
import { InvalidRequestError } from './request-error';

/** Request ids become part of workflow ids: letters, digits, `.`, `_`, `-`; at most 100. */
const REQUEST_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
/** Backup ids as `backupOrganization` makes them (`20261130T020304Z-1a2b3c4d`), or any folder-safe id. */
const BACKUP_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** The organization id, or an {@link InvalidRequestError} quoting the id rule. */
export function requireOrgId(value: unknown, field: string): string {
  if (isOrgId(value)) return value;
  throw new InvalidRequestError(field, `invalid organization id ${JSON.stringify(value)}: ${ORG_ID_RULE}`);
}

export function requireRequestId(value: unknown, field = 'requestId'): string {
  if (typeof value === 'string' && REQUEST_ID.test(value)) return value;
  throw new InvalidRequestError(
    field,
    `expected 1-100 letters, digits, ".", "_" or "-" starting with a letter or digit; got ${JSON.stringify(value)}`,
  );
}

export function requireBackupId(value: unknown, field = 'backupId'): string {
  if (typeof value === 'string' && BACKUP_ID.test(value)) return value;
  throw new InvalidRequestError(
    field,
    `expected a backup id such as "20261130T020304Z-1a2b3c4d"; got ${JSON.stringify(value)}`,
  );
}

function requireText(value: unknown, field: string): string {
  if (typeof value === 'string' && value.trim().length > 0 && value.length <= 1000) return value;
  throw new InvalidRequestError(
    field,
    `expected a non-empty text of at most 1000 characters; got ${JSON.stringify(value)}`,
  );
}

/** Milliseconds of a duration in the one format the workflows accept too (`7d`, `1h30m`, `1w`, `500ms`). */
export function parseDuration(value: unknown, field: string): number {
  const parsed = durationMsOrProblem(value);
  if (typeof parsed === 'string') throw new InvalidRequestError(field, parsed);
  return parsed;
}

export function validateBackupInput(input: unknown): BackupOrganizationInput {
  if (!isObject(input)) throw new InvalidRequestError('input', 'expected an object such as {"orgId": "acme"}');
  const orgId = requireOrgId(input.orgId, 'orgId');
  const out: BackupOrganizationInput = { orgId };
  if (input.reason !== undefined) out.reason = requireText(input.reason, 'reason');
  if (input.stores !== undefined) {
    const stores = input.stores;
    if (
      !Array.isArray(stores) ||
      stores.length === 0 ||
      !stores.every((s): s is BackupStoreName => BACKUP_STORES.some((b) => b === s))
    ) {
      throw new InvalidRequestError(
        'stores',
        `expected a non-empty list of ${BACKUP_STORES.map((s) => `"${s}"`).join(', ')}; got ${JSON.stringify(stores)}`,
      );
    }
    out.stores = stores;
  }
  if (input.verify !== undefined) {
    if (typeof input.verify !== 'boolean') throw new InvalidRequestError('verify', 'expected true or false');
    out.verify = input.verify;
  }
  return out;
}

export function validateVerifyInput(input: unknown): VerifyBackupInput {
  if (!isObject(input))
    throw new InvalidRequestError('input', 'expected {"backupId": "..."} or {"orgId": "acme", "latest": true}');
  if (input.backupId !== undefined) {
    const backupId = requireBackupId(input.backupId);
    return input.orgId === undefined ? { backupId } : { backupId, orgId: requireOrgId(input.orgId, 'orgId') };
  }
  if (input.latest !== true)
    throw new InvalidRequestError('backupId', 'expected a backup id, or "orgId" with "latest": true');
  return { orgId: requireOrgId(input.orgId, 'orgId'), latest: true };
}

export function validateRestoreInput(input: unknown): RestoreOrganizationInput {
  if (!isObject(input))
    throw new InvalidRequestError(
      'input',
      'expected {"backupId": "...", "mode": "into-empty" | "replace"} or {"orgId": "acme", "latest": true, "mode": …}',
    );
  if (input.latest !== undefined && input.latest !== true)
    throw new InvalidRequestError('latest', `expected true or no field; got ${JSON.stringify(input.latest)}`);
  if (input.latest === true && input.backupId !== undefined)
    throw new InvalidRequestError('latest', 'expected either "backupId" or "latest": true with "orgId", not both');
  const mode = input.mode;
  if (!RESTORE_MODES.some((m) => m === mode))
    throw new InvalidRequestError(
      'mode',
      `expected one of ${RESTORE_MODES.map((m) => `"${m}"`).join(', ')}; got ${JSON.stringify(mode)}`,
    );
  const out: RestoreOrganizationInput =
    input.latest === true
      ? { orgId: requireOrgId(input.orgId, 'orgId'), latest: true, mode: mode === 'replace' ? 'replace' : 'into-empty' }
      : { backupId: requireBackupId(input.backupId), mode: mode === 'replace' ? 'replace' : 'into-empty' };
  if (input.orgId !== undefined) out.orgId = requireOrgId(input.orgId, 'orgId');
  if (input.targetOrgId !== undefined) out.targetOrgId = requireOrgId(input.targetOrgId, 'targetOrgId');
  if (input.dryRun !== undefined) {
    if (typeof input.dryRun !== 'boolean') throw new InvalidRequestError('dryRun', 'expected true or false');
    out.dryRun = input.dryRun;
  }
  // Restoring a deleted organization is refused by the workflow unless the caller says why; the reason is recorded.
  if (input.override !== undefined) {
    if (!isObject(input.override))
      throw new InvalidRequestError('override', 'expected {"reason": "..."} to restore a deleted organization');
    out.override = { reason: requireText(input.override.reason, 'override.reason') };
  }
  return out;
}

/** The durations of a deletion besides its grace period, passed on when given. */
const OPTIONAL_DELETION_DURATIONS = ['backupRetention', 'storeDownAfter', 'parkedRetryInterval'] as const;

export function validateDeleteInput(input: unknown): DeleteOrganizationInput {
  if (!isObject(input))
    throw new InvalidRequestError(
      'input',
      'expected {"orgId", "confirmOrgId", "requestedBy", "reason", "gracePeriod", "skipBackup", "backupRetention", "storeDownAfter", "parkedRetryInterval"}',
    );
  const orgId = requireOrgId(input.orgId, 'orgId');
  if (input.confirmOrgId !== orgId) {
    throw new InvalidRequestError(
      'confirmOrgId',
      `must repeat the organization id ${JSON.stringify(orgId)} exactly; got ${JSON.stringify(input.confirmOrgId)}`,
    );
  }
  const gracePeriod = input.gracePeriod ?? '7d';
  parseDuration(gracePeriod, 'gracePeriod');
  const skipBackup = input.skipBackup ?? false;
  if (typeof skipBackup !== 'boolean') throw new InvalidRequestError('skipBackup', 'expected true or false');
  if (input.dryRun !== undefined && typeof input.dryRun !== 'boolean')
    throw new InvalidRequestError('dryRun', 'expected true or false');
  // Absent ones stay absent: the workflow applies its own defaults (DELETION_DEFAULTS).
  const durations: Pick<DeleteOrganizationInput, (typeof OPTIONAL_DELETION_DURATIONS)[number]> = {};
  for (const field of OPTIONAL_DELETION_DURATIONS) {
    const value = input[field];
    if (value === undefined) continue;
    parseDuration(value, field);
    durations[field] = String(value);
  }
  return {
    orgId,
    confirmOrgId: orgId,
    requestedBy: requireText(input.requestedBy, 'requestedBy'),
    reason: requireText(input.reason, 'reason'),
    gracePeriod: String(gracePeriod),
    skipBackup,
    ...durations,
    ...(input.dryRun === true ? { dryRun: true } : {}),
  };
}

export function validateCancelDeletion(input: unknown): { by: string; reason: string } {
  if (!isObject(input)) throw new InvalidRequestError('input', 'expected {"by": "...", "reason": "..."}');
  return { by: requireText(input.by, 'by'), reason: requireText(input.reason, 'reason') };
}
