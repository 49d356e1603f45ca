// Inputs and reports of the Kubernetes operations (runbook: "Deployment Rollback" and the weekly
// "cluster state backup (Velero)"). Plain data and pure validation only: workflows import this.

import type { RecordHelmValuesResult } from './helm-values';

/** Failure types of the Kubernetes operations, beside the shared ones in `errors.ts`. */
export const KubernetesFailureType = {
  /** A Deployment, revision, Helm release or Velero Backup that does not exist. */
  UnknownObject: 'UnknownKubernetesObject',
  /** A rollout that passed its progress deadline, or a Helm command that failed. */
  RolloutFailed: 'RolloutFailed',
  /** A Velero Backup that ended Failed or FailedValidation. */
  BackupFailed: 'VeleroBackupFailed',
} as const;
export type KubernetesFailureType = (typeof KubernetesFailureType)[keyof typeof KubernetesFailureType];

/** The runbook's namespace and Helm release; activities fall back to the configured ones. */
export const DEFAULT_KUBERNETES_NAMESPACE = 'eloquent';
export const VELERO_NAMESPACE = 'velero';
/** Velero's own default retention (30 days). */
export const DEFAULT_BACKUP_TTL = '720h';

export interface RollbackDeploymentInput {
  /** Name of the Deployment, e.g. `api`. */
  service: string;
  /** @default the configured namespace (`eloquent`) */
  namespace?: string;
  /** Revision to go back to, as `deploymentHistory` lists it. @default the previous revision */
  toRevision?: number;
  /** When the rolled-back rollout fails, put back the template it started from. @default true */
  rollForwardOnFailure?: boolean;
}

export interface DeploymentHistoryInput {
  service: string;
  namespace?: string;
}

/** One revision of a Deployment: a ReplicaSet it owns, like a row of `kubectl rollout history`. */
export interface DeploymentRevision {
  revision: number;
  replicaSet: string;
  /** `container=image` of every container of the pod template, in order. */
  images: string[];
  /** The `kubernetes.io/change-cause` annotation, when someone recorded one. */
  changeCause?: string;
  createdAt?: string;
  /** Ready pods of this ReplicaSet now. */
  readyReplicas: number;
}

export interface DeploymentHistory {
  namespace: string;
  service: string;
  /** The revision the Deployment is at (its `deployment.kubernetes.io/revision` annotation). */
  currentRevision: number;
  /** Oldest first. */
  revisions: DeploymentRevision[];
}

/** What a rollback will do, decided before anything is changed. */
export interface DeploymentRollbackPlan {
  namespace: string;
  service: string;
  fromRevision: number;
  fromImages: string[];
  toRevision: number;
  toImages: string[];
  /** The Deployment's pod template already is the target's: nothing to patch. */
  alreadyAtTarget: boolean;
}

export interface DeploymentRollout {
  namespace: string;
  service: string;
  outcome: 'complete' | 'failed';
  /** Why it failed (the Progressing condition's message), or a summary when complete. */
  message: string;
  revision: number;
  images: string[];
  replicas: number;
  updatedReplicas: number;
  availableReplicas: number;
}

export interface RollbackDeploymentReport {
  namespace: string;
  service: string;
  fromRevision: number;
  fromImages: string[];
  /** The revision rolled back to, numbered as before the rollback. */
  toRevision: number;
  toImages: string[];
  /** The number the controller gave the restored template (rollback makes it the newest). */
  revisionAfter: number;
  changed: boolean;
}

export interface RollbackPlatformInput {
  /** @default the configured release (`eloquent`) */
  release?: string;
  /** @default the configured namespace (`eloquent`) */
  namespace?: string;
  /** Release revision to go back to, as `helm history` lists it. @default the previous revision */
  revision?: number;
}

/** One row of `helm history`. */
export interface HelmRevision {
  revision: number;
  updated: string;
  status: string;
  chart: string;
  appVersion: string;
  description: string;
}

export interface HelmHistory {
  release: string;
  namespace: string;
  /** Oldest first. */
  revisions: HelmRevision[];
}

export interface HelmRollbackResult {
  release: string;
  namespace: string;
  fromRevision: number;
  toRevision: number;
  /** The revision `helm rollback` created. */
  newRevision: number;
  /** Last lines helm printed. */
  output: string[];
}

export interface RollbackPlatformReport extends HelmRollbackResult {
  deployments: DeploymentRollout[];
  historyBefore: HelmRevision[];
  historyAfter: HelmRevision[];
  /** The release's values kept after the rollback, or why they could not be; absent in runs of older code. */
  helmValues?: RecordHelmValuesResult | { error: string };
}

export interface BackupKubernetesInput {
  /** Namespaces the backup contains. @default the configured namespace (`eloquent`) */
  includedNamespaces?: string[];
  /** Retention as a Go duration. @default "720h" */
  ttl?: string;
  /** Velero BackupStorageLocation. @default Velero's default location */
  storageLocation?: string;
  /** Name of the Backup object. @default derived from the workflow id */
  name?: string;
}

export const VELERO_TERMINAL_PHASES = ['Completed', 'PartiallyFailed', 'Failed', 'FailedValidation'] as const;
export type VeleroTerminalPhase = (typeof VELERO_TERMINAL_PHASES)[number];

export interface VeleroBackupResult {
  /** The release's values kept with the weekly backup, or why they could not be (backupKubernetes only). */
  helmValues?: RecordHelmValuesResult | { error: string };
  name: string;
  namespace: string;
  phase: VeleroTerminalPhase;
  includedNamespaces: string[];
  ttl: string;
  /** Counts of errors and warnings the backup logged (Velero keeps the messages in its log). */
  errors: number;
  warnings: number;
  failureReason?: string;
  validationErrors: string[];
  expiration?: string;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const GO_DURATION = /^(\d+(\.\d+)?(h|m|s|ms))+$/;

/** Problems with one input, each naming its field; empty when the input is valid. */
export type InputProblems = string[];

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function checkName(
  problems: InputProblems,
  field: string,
  value: unknown,
  pattern: RegExp,
  max: number,
  required: boolean,
): void {
  if (value === undefined && !required) return;
  if (typeof value !== 'string' || value.length === 0 || value.length > max || !pattern.test(value)) {
    problems.push(
      `${field} must be a Kubernetes name (lowercase letters, digits and "-", at most ${max} characters), got ${JSON.stringify(value)}`,
    );
  }
}

function checkRevision(problems: InputProblems, field: string, value: unknown): void {
  if (value !== undefined && (typeof value !== 'number' || !Number.isInteger(value) || value < 1)) {
    problems.push(`${field} must be a positive whole number, got ${JSON.stringify(value)}`);
  }
}

function checkKnownFields(problems: InputProblems, input: Record<string, unknown>, known: readonly string[]): void {
  for (const key of Object.keys(input)) {
    if (!known.includes(key))
      problems.push(`${key} is not a field of this input; expected some of ${known.join(', ')}`);
  }
}

export function validateRollbackDeploymentInput(input: unknown): InputProblems {
  if (!isObject(input))
    return ['input must be an object like {"service": "api", "namespace": "eloquent", "toRevision": 3}'];
  const problems: InputProblems = [];
  checkKnownFields(problems, input, ['service', 'namespace', 'toRevision', 'rollForwardOnFailure']);
  checkName(problems, 'service', input.service, DNS_SUBDOMAIN, 253, true);
  checkName(problems, 'namespace', input.namespace, DNS_LABEL, 63, false);
  checkRevision(problems, 'toRevision', input.toRevision);
  if (input.rollForwardOnFailure !== undefined && typeof input.rollForwardOnFailure !== 'boolean') {
    problems.push(`rollForwardOnFailure must be true or false, got ${JSON.stringify(input.rollForwardOnFailure)}`);
  }
  return problems;
}

export function validateRollbackPlatformInput(input: unknown): InputProblems {
  if (!isObject(input))
    return ['input must be an object like {"release": "eloquent", "namespace": "eloquent", "revision": 3}'];
  const problems: InputProblems = [];
  checkKnownFields(problems, input, ['release', 'namespace', 'revision']);
  // Helm limits release names to 53 characters so that generated names stay within 63.
  checkName(problems, 'release', input.release, DNS_SUBDOMAIN, 53, false);
  checkName(problems, 'namespace', input.namespace, DNS_LABEL, 63, false);
  checkRevision(problems, 'revision', input.revision);
  return problems;
}

export function validateBackupKubernetesInput(input: unknown): InputProblems {
  if (!isObject(input)) return ['input must be an object like {"includedNamespaces": ["eloquent"], "ttl": "720h"}'];
  const problems: InputProblems = [];
  checkKnownFields(problems, input, ['includedNamespaces', 'ttl', 'storageLocation', 'name']);
  const namespaces = input.includedNamespaces;
  if (namespaces !== undefined) {
    if (!Array.isArray(namespaces) || namespaces.length === 0) {
      problems.push(
        `includedNamespaces must be a non-empty list of namespace names, got ${JSON.stringify(namespaces)}`,
      );
    } else {
      namespaces.forEach((ns: unknown, i) => {
        if (ns !== '*') checkName(problems, `includedNamespaces[${i}]`, ns, DNS_LABEL, 63, true);
      });
    }
  }
  if (input.ttl !== undefined && (typeof input.ttl !== 'string' || !GO_DURATION.test(input.ttl))) {
    problems.push(`ttl must be a duration such as "720h" or "72h30m", got ${JSON.stringify(input.ttl)}`);
  }
  checkName(problems, 'storageLocation', input.storageLocation, DNS_SUBDOMAIN, 253, false);
  // Velero copies the backup name into label values, which are limited to 63 characters.
  checkName(problems, 'name', input.name, DNS_LABEL, 63, false);
  return problems;
}

/**
 * A valid Backup name made from a workflow id: lowercase, other characters replaced by "-",
 * and, when too long, shortened with a hash of the whole id so distinct ids stay distinct.
 */
export function backupNameFor(workflowId: string): string {
  const cleaned =
    workflowId
      .toLowerCase()
      .replace(/[^a-z0-9-]+/g, '-')
      .replace(/^-+|-+$/g, '') || 'backup';
  if (cleaned.length <= 63) return cleaned;
  let hash = 0x811c9dc5; // FNV-1a, 32 bits: deterministic and dependency-free for workflow code
  for (let i = 0; i < workflowId.length; i++) {
    hash ^= workflowId.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return `${cleaned.slice(0, 54).replace(/-+$/, '')}-${hash.toString(16).padStart(8, '0')}`;
}
