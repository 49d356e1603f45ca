// The deletion's input, checked before anything happens; every problem names its field.
import { ApplicationFailure } from '@temporalio/workflow';
import { DELETION_DEFAULTS, parseDurationMs, type DeleteOrganizationInput } from '../../contracts/deletion';
import { FailureType } from '../../errors';
import { parseOrgId } from '../../platform/org-id';

export interface DeletionInput {
  orgId: string;
  requestedBy: string;
  reason: string;
  skipBackup: boolean;
  gracePeriod: string;
  gracePeriodMs: number;
  backupRetention: string;
  backupRetentionMs: number;
  storeDownAfterMs: number;
  parkedRetryIntervalMs: number;
  reapplyingDeletionRunId?: string;
}

/** A failure of the input: non-retryable, and says that nothing was changed. */
export function invalid(message: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(`${message}; nothing was changed`, FailureType.InvalidInput);
}

/** Checks the input before anything happens; every problem names its field. */
export function parseDeletionInput(input: DeleteOrganizationInput | undefined): DeletionInput {
  if (input === null || typeof input !== 'object') {
    throw invalid(
      'input: expected an object such as {"orgId": "acme", "confirmOrgId": "acme", "requestedBy": "ops@example.com", "reason": "contract ended"}',
    );
  }
  const orgId = parseOrgId(input.orgId, 'orgId');
  if (input.confirmOrgId !== orgId) {
    throw invalid(
      `confirmOrgId: ${JSON.stringify(input.confirmOrgId ?? null)} does not match orgId ${JSON.stringify(orgId)}`,
    );
  }
  const text = (field: 'requestedBy' | 'reason') => {
    const value = input[field];
    if (typeof value !== 'string' || value.trim() === '')
      throw invalid(`${field}: expected a non-empty string (it is recorded in the deletion certificate)`);
    return value.trim();
  };
  const requestedBy = text('requestedBy');
  const reason = text('reason');
  if (input.skipBackup !== undefined && typeof input.skipBackup !== 'boolean')
    throw invalid('skipBackup: expected true or false');
  const duration = (field: 'gracePeriod' | 'backupRetention' | 'storeDownAfter' | 'parkedRetryInterval') => {
    const value = input[field] ?? DELETION_DEFAULTS[field];
    try {
      return { text: value, ms: parseDurationMs(value, field) };
    } catch (err) {
      throw invalid(err instanceof Error ? err.message : String(err));
    }
  };
  const grace = duration('gracePeriod');
  const retention = duration('backupRetention');
  const storeDownAfter = duration('storeDownAfter');
  const parkedRetry = duration('parkedRetryInterval');
  if (storeDownAfter.ms < 1_000) throw invalid('storeDownAfter: expected at least 1s');
  if (parkedRetry.ms < 1_000) throw invalid('parkedRetryInterval: expected at least 1s');
  return {
    orgId,
    requestedBy,
    reason,
    skipBackup: input.skipBackup ?? false,
    gracePeriod: grace.text,
    gracePeriodMs: grace.ms,
    backupRetention: retention.text,
    backupRetentionMs: retention.ms,
    storeDownAfterMs: storeDownAfter.ms,
    parkedRetryIntervalMs: parkedRetry.ms,
    ...(typeof input.reapplyingDeletionRunId === 'string'
      ? { reapplyingDeletionRunId: input.reapplyingDeletionRunId }
      : {}),
  };
}
