/**
 * Dry-run plans: what `restoreOrganization` and `deleteOrganization` would create, replace or remove
 * when given `dryRun: true`, computed from the backup's manifest and what the stores hold now,
 * without changing anything. Deterministic code only (workflows import it).
 */
import type { RemovedCounts } from './deletion';

/** One object a plan names, with its rows and, where the store tells, its bytes. */
export interface PlannedObject {
  store: 'postgres' | 'clickhouse' | 'queue' | 'redis';
  /** As the fingerprint names it, with the organization's own id: `schema:org_acme.users`, `clickhouse:kg_nodes`. */
  object: string;
  rows: number;
  bytes?: number;
}

/** A name of the source and the name it gets in the target (equal unless the restore makes a clone). */
export interface PlannedRename {
  store: 'postgres' | 'clickhouse';
  kind: 'schema' | 'database' | 'shared rows';
  from: string;
  to: string;
}

/** What `restoreOrganization` with `dryRun: true` returns. */
export interface RestorePlan {
  dryRun: true;
  backupId: string;
  sourceOrgId: string;
  targetOrgId: string;
  mode: 'into-empty' | 'replace';
  /** The organization id every name, key column and row is mapped from and to. */
  idMapping: { from: string; to: string };
  names: PlannedRename[];
  /** What the restore writes into the target: each object of the backup's fingerprint, renamed. */
  create: PlannedObject[];
  /** The backup's artifacts it reads (stored bytes, rows where the format tells). */
  artifacts: Array<{ store: string; object: string; file: string; bytes: number; rows: number | null }>;
  /** What the target holds now and a `replace` removes (after its safety backup); empty for an empty target. */
  replace: PlannedObject[];
  /** A `replace` of a target with data first takes a backup of it. */
  safetyBackup: boolean;
  /** The target has a deletion record: the restore needs an override, which it records. */
  deletionRecord?: { workflowId: string; requestedBy: string; reason: string };
  /** Why a real run would refuse, each with what to change; empty when it would run. */
  refusals: string[];
  totals: { createObjects: number; createRows: number; readBytes: number; replaceObjects: number; replaceRows: number };
}

/** One purge step of a deletion plan: what it would remove, counted as the certificate counts it. */
export interface PlannedPurgeStep {
  step: 'queue' | 'redis' | 'clickhouse' | 'postgres-schemas' | 'postgres-shared-rows';
  objects: PlannedObject[];
  /** The same keys and figures the certificate's `steps[].removed` will carry. */
  removed: RemovedCounts;
}

/** What `deleteOrganization` with `dryRun: true` returns. */
export interface DeletionPlan {
  dryRun: true;
  orgId: string;
  /** The workflow id the real deletion runs under. */
  workflowId: string;
  /** The pre-deletion backup: taken and verified, or skipped (with the recorded reason). */
  backup: { skipped: true; reason: string } | { skipped: false; stores: string[]; verify: true };
  /** The organization row's status now, which becomes `deleting` (a cancel gives it back). */
  status?: string;
  /** Session keys (and the session index) revoked before the grace period: not given back by a cancel. */
  sessionsRevoked: number;
  gracePeriod: string;
  /** After the point of no return, in order; totals per step as the certificate will record them. */
  purge: PlannedPurgeStep[];
  /** Why a real run would refuse; empty when it would run. */
  refusals: string[];
  totals: { objects: number; rows: number; bytes: number };
}
