import { ActivityFailure, ApplicationFailure, patched } from '@temporalio/workflow';
import type {
  DiffHelmValuesInput,
  DiffHelmValuesResult,
  RecordHelmValuesInput,
  RecordHelmValuesResult,
} from '../contracts/helm-values';
import { FailureType } from '../errors';
import { helmCommands, startOperation, step } from './kubernetes-steps';

/** Marker of rollbackPlatform and backupKubernetes runs that keep the Helm values afterwards. */
export const HELM_VALUES_PATCH = 'helm-values-v1';

/** The Helm values step of another workflow: what it recorded, or why it could not (never hidden, never fatal). */
export type HelmValuesOutcome = RecordHelmValuesResult | { error: string };

/**
 * Keeps the release's values after the workflow changed or backed up the cluster. The rollback or
 * backup has happened by then: a failure to keep the values is reported in the result, not turned
 * into a failed rollback. Runs of older code skip it (replay).
 */
export async function keepHelmValuesAfter(input: RecordHelmValuesInput): Promise<HelmValuesOutcome | undefined> {
  if (!patched(HELM_VALUES_PATCH)) return undefined;
  try {
    return await helmCommands.recordHelmValues(input);
  } catch (err) {
    const cause = err instanceof ActivityFailure && err.cause instanceof ApplicationFailure ? err.cause : err;
    return { error: cause instanceof Error ? cause.message : String(cause) };
  }
}

/** Stores and commits the values of every revision of a release not kept yet (see the activity). */
export async function recordHelmValues(input: RecordHelmValuesInput = {}): Promise<RecordHelmValuesResult> {
  const moveTo = startOperation();
  moveTo(`keeping the values of helm release ${input.release ?? 'the configured release'}`);
  return step(helmCommands.recordHelmValues(input));
}

/** What changed between the kept values of two revisions of a release. */
export async function diffHelmValues(input: DiffHelmValuesInput): Promise<DiffHelmValuesResult> {
  const moveTo = startOperation();
  for (const field of ['from', 'to'] as const) {
    const value = input?.[field];
    if (!Number.isInteger(value) || value < 1)
      throw ApplicationFailure.nonRetryable(
        `diffHelmValues: ${field}: expected a revision number (a whole number >= 1), got ${JSON.stringify(value)}`,
        FailureType.InvalidInput,
      );
  }
  moveTo(`comparing revisions ${input.from} and ${input.to}`);
  return step(helmCommands.diffHelmValues(input));
}
