/** Helm values kept per release revision, secrets redacted (src/activities/kubernetes/helm-values.ts). */

/** What replaces a redacted value; never a value of its own. */
export const REDACTED_VALUE = '[redacted]';

/** One revision's values as stored in `_helm/<namespace>.<release>/revision-<N>.json` and committed to git. */
export interface HelmValuesRecord {
  release: string;
  namespace: string;
  revision: number;
  chart: string;
  status: string;
  updated: string;
  description: string;
  /** `helm get values --all --revision N`, redacted. */
  values: unknown;
  /** Dotted paths whose value was redacted, and why (`key` matched the pattern, or `secret` value). */
  redacted: Array<{ path: string; reason: 'key' | 'secret' }>;
}

export interface RecordHelmValuesInput {
  release?: string;
  namespace?: string;
}

export interface RecordHelmValuesResult {
  release: string;
  namespace: string;
  /** Revisions stored by this run (revisions stored before are left as they are). */
  stored: number[];
  /** Revisions committed to the git repository by this run; absent without `HELM_VALUES_GIT_DIR`. */
  committed?: number[];
  /** Every revision helm still has, oldest first. */
  revisions: number[];
}

export interface DiffHelmValuesInput {
  release?: string;
  namespace?: string;
  from: number;
  to: number;
}

/** One changed value between two revisions; values are JSON text (redacted ones read `"[redacted]"`). */
export interface HelmValueChange {
  path: string;
  change: 'added' | 'removed' | 'changed';
  from?: string;
  to?: string;
}

export interface DiffHelmValuesResult {
  release: string;
  namespace: string;
  from: number;
  to: number;
  changes: HelmValueChange[];
}
