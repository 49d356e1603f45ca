/** Label values of one series, e.g. `{ activity: 'backupPostgres', outcome: 'ok' }`. */
export type Labels = Record<string, string>;

/** Prometheus label-value escaping: backslash, double quote and newline. */
function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function labelText(labels: Labels, extra: Labels = {}): string {
  const all = { ...labels, ...extra };
  const keys = Object.keys(all).sort();
  return keys.length ? `{${keys.map((k) => `${k}="${escapeLabel(all[k] ?? '')}"`).join(',')}}` : '';
}

const keyOf = (labels: Labels) => JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : 1)));

/** A monotonically increasing count per label set. */
export class Counter {
  private readonly values = new Map<string, { labels: Labels; value: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}
  inc(labels: Labels = {}, by = 1): void {
    const key = keyOf(labels);
    const entry = this.values.get(key) ?? { labels, value: 0 };
    entry.value += by;
    this.values.set(key, entry);
  }
  /** The current value of one series (0 when never incremented). */
  get(labels: Labels = {}): number {
    return this.values.get(keyOf(labels))?.value ?? 0;
  }
  expose(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    for (const { labels, value } of this.values.values()) lines.push(`${this.name}${labelText(labels)} ${value}`);
    return lines.join('\n');
  }
}

/** A value that goes up and down, set per label set. */
export class Gauge {
  private values = new Map<string, { labels: Labels; value: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}
  set(labels: Labels, value: number): void {
    this.values.set(keyOf(labels), { labels, value });
  }
  /** Forgets every series (before a full refresh, so organizations that are no longer stale disappear). */
  reset(): void {
    this.values = new Map();
  }
  expose(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} gauge`];
    for (const { labels, value } of this.values.values()) lines.push(`${this.name}${labelText(labels)} ${value}`);
    return lines.join('\n');
  }
}

/** Durations in seconds, with cumulative buckets as Prometheus expects. */
export class Histogram {
  private readonly series = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly buckets: readonly number[] = [0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 14400],
  ) {}
  observe(labels: Labels, value: number): void {
    const key = keyOf(labels);
    const s = this.series.get(key) ?? { labels, counts: this.buckets.map(() => 0), sum: 0, count: 0 };
    this.buckets.forEach((b, i) => {
      if (value <= b) s.counts[i] = (s.counts[i] ?? 0) + 1;
    });
    s.sum += value;
    s.count++;
    this.series.set(key, s);
  }
  expose(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const s of this.series.values()) {
      this.buckets.forEach((b, i) =>
        lines.push(`${this.name}_bucket${labelText(s.labels, { le: String(b) })} ${s.counts[i] ?? 0}`),
      );
      lines.push(`${this.name}_bucket${labelText(s.labels, { le: '+Inf' })} ${s.count}`);
      lines.push(`${this.name}_sum${labelText(s.labels)} ${s.sum}`);
      lines.push(`${this.name}_count${labelText(s.labels)} ${s.count}`);
    }
    return lines.join('\n');
  }
}

/** The worker's own metrics, exposed beside Temporal's runtime metrics. */
export class RecoveryMetrics {
  readonly activityRuns = new Counter(
    'eloquent_activity_runs_total',
    'Activity attempts by activity and outcome (ok, failed).',
  );
  readonly activityDuration = new Histogram(
    'eloquent_activity_duration_seconds',
    'Duration of activity attempts, in seconds.',
  );
  readonly backupBytes = new Counter(
    'eloquent_backup_bytes_total',
    'Bytes written to the backup store by backups, by store (after compression/encryption).',
  );
  readonly backupArtifacts = new Counter('eloquent_backup_artifacts_total', 'Artifacts written by backups, by store.');
  readonly chatArchived = new Counter(
    'eloquent_chat_archived_messages_total',
    'Chat messages archived to ClickHouse, by outcome (archived, dead_letter).',
  );
  readonly staleOrganizations = new Gauge(
    'eloquent_stale_organizations',
    'Organizations whose newest verified backup is older than the staleness age (one series in total).',
  );
  readonly newestVerifiedBackupAge = new Gauge(
    'eloquent_newest_verified_backup_age_seconds',
    'Age of the newest verified backup of each stale organization; -1 when it has none.',
  );

  expose(): string {
    return [
      this.activityRuns,
      this.activityDuration,
      this.backupBytes,
      this.backupArtifacts,
      this.chatArchived,
      this.staleOrganizations,
      this.newestVerifiedBackupAge,
    ]
      .map((m) => m.expose())
      .join('\n');
  }
}
