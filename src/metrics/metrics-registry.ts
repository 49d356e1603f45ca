import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';

/**
 * Names of every metric this project exports itself, for the alert rules (deploy/prometheus/) and
 * the dashboard (deploy/grafana/), whose test checks they name only exported metrics. Attempts,
 * latencies and failures of activities and workflows are Temporal's own (`temporal_activity_*`,
 * `temporal_workflow_*`, re-served on the same endpoint), so they are not counted twice here.
 */
export const METRIC_NAMES = {
  backupBytes: 'eloquent_backup_bytes_total',
  backupArtifacts: 'eloquent_backup_artifacts_total',
  chatArchived: 'eloquent_chat_archived_messages_total',
  lastVerifiedBackup: 'eloquent_last_verified_backup_timestamp_seconds',
  staleOrganizations: 'eloquent_stale_organizations',
  parkedDeletions: 'eloquent_parked_deletions',
  scrapeErrors: 'eloquent_metrics_refresh_errors_total',
} as const;

/** The label of every per-organization series (README: `{org_id}`). */
export const ORG_LABEL = 'org_id';

/** What the endpoint reads on each scrape (cached): organizations' verified backups and parked deletions. */
export interface ScrapeSources {
  /** Newest verified backup time of every organization, in ms since the epoch; `undefined` = never verified. */
  lastVerifiedBackups?: () => Promise<ReadonlyMap<string, number | undefined>>;
  /** How old the newest verified backup may be before the organization counts as stale, in ms. */
  staleAfterMs: number;
  /** Organizations whose running deletion is parked waiting for an operator. */
  parkedDeletions?: () => Promise<readonly string[]>;
}

/**
 * The worker's own metrics on a prom-client registry, with the default process metrics (CPU,
 * resident memory, heap, event-loop lag, GC, open file descriptors) beside them.
 */
export class RecoveryMetrics {
  readonly registry = new Registry();
  readonly backupBytes: Counter<'store'>;
  readonly backupArtifacts: Counter<'store'>;
  readonly chatArchived: Counter<'outcome'>;
  readonly lastVerifiedBackup: Gauge<typeof ORG_LABEL>;
  readonly staleOrganizations: Gauge;
  readonly parkedDeletions: Gauge<typeof ORG_LABEL>;
  readonly refreshErrors: Counter<'source'>;

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.backupBytes = new Counter({
      name: METRIC_NAMES.backupBytes,
      help: 'Bytes written to the backup store by backups, by store (after compression and encryption).',
      labelNames: ['store'],
      registers,
    });
    this.backupArtifacts = new Counter({
      name: METRIC_NAMES.backupArtifacts,
      help: 'Artifacts written to the backup store by backups, by store.',
      labelNames: ['store'],
      registers,
    });
    this.chatArchived = new Counter({
      name: METRIC_NAMES.chatArchived,
      help: 'Chat messages archived to ClickHouse, by outcome (archived, dead_letter).',
      labelNames: ['outcome'],
      registers,
    });
    this.lastVerifiedBackup = new Gauge({
      name: METRIC_NAMES.lastVerifiedBackup,
      help: 'Start time (Unix seconds) of the newest backup of each organization whose verification passed; 0 when it has none.',
      labelNames: [ORG_LABEL],
      registers,
    });
    this.staleOrganizations = new Gauge({
      name: METRIC_NAMES.staleOrganizations,
      help: 'Organizations whose newest verified backup is older than the staleness age (36 h), or that have none.',
      registers,
    });
    this.parkedDeletions = new Gauge({
      name: METRIC_NAMES.parkedDeletions,
      help: 'Running deleteOrganization workflows parked for an operator (retryNow or abandon), per organization (1 each).',
      labelNames: [ORG_LABEL],
      registers,
    });
    this.refreshErrors = new Counter({
      name: METRIC_NAMES.scrapeErrors,
      help: 'Scrapes whose refresh of a source failed (the series of that source keep their previous values).',
      labelNames: ['source'],
      registers,
    });
  }

  /** Replaces the per-organization series with `verifiedAtMs` (organizations that left disappear). */
  setLastVerifiedBackups(
    verifiedAtMs: ReadonlyMap<string, number | undefined>,
    staleAfterMs: number,
    nowMs: number,
  ): void {
    this.lastVerifiedBackup.reset();
    let stale = 0;
    for (const [orgId, at] of verifiedAtMs) {
      this.lastVerifiedBackup.set({ [ORG_LABEL]: orgId }, at === undefined ? 0 : Math.floor(at / 1000));
      if (at === undefined || nowMs - at > staleAfterMs) stale++;
    }
    this.staleOrganizations.set(stale);
  }

  setParkedDeletions(orgIds: readonly string[]): void {
    this.parkedDeletions.reset();
    for (const orgId of orgIds) this.parkedDeletions.set({ [ORG_LABEL]: orgId }, 1);
  }
}
