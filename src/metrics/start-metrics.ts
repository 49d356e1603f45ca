import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TelemetryOptions } from '@temporalio/worker';
import { DEFAULT_STALE_AFTER_MS, findStaleOrganizations } from '../activities/cross-store/staleness';
import type { AppConfig } from '../config';
import type { StoreBackupResult } from '../contracts/backup';
import type { ArchiveChatResult } from '../contracts/chat-archive';
import { DEFAULT_PLATFORM_MODEL, type PlatformModel } from '../platform/data-map';
import type { BackupStore } from '../storage/backup-store';
import { createBackupStore } from '../storage/configured-backup-store';
import type { StoreClients } from '../store-clients';
import { RecoveryMetrics } from './metrics-registry';

/** Staleness is recomputed at most this often, in milliseconds: it lists every organization's backups. */
const STALENESS_CACHE_MS = 60_000;

/**
 * Port of Temporal's own (Rust core) Prometheus exporter: the worker's metrics port + 1, on
 * loopback only, since `/metrics` on the metrics port re-serves it.
 */
export function temporalMetricsPort(config: AppConfig): number {
  return config.metricsPort + 1;
}

/**
 * Telemetry options for `Runtime.install` that make Temporal export its runtime metrics
 * (workflow/activity task latencies, completions by workflow type, sticky cache…) in Prometheus
 * format; `undefined` when metrics are disabled (`METRICS_PORT=0`).
 */
export function temporalTelemetryOptions(config: AppConfig): TelemetryOptions | undefined {
  if (config.metricsPort === 0) return undefined;
  return { metrics: { prometheus: { bindAddress: `127.0.0.1:${temporalMetricsPort(config)}` } } };
}

export interface MetricsOptions {
  config: AppConfig;
  /** With clients, `/metrics` also reports stale organizations (newest verified backup older than `staleAfterMs`). */
  clients?: StoreClients;
  model?: PlatformModel;
  store?: BackupStore;
  /** @default 36 hours */
  staleAfterMs?: number;
  /** Overrides `config.metricsPort` (0 = any free port, for tests). */
  port?: number;
}

export interface MetricsEndpoint {
  metrics: RecoveryMetrics;
  /** The port `/metrics` listens on. */
  port: number;
  /** The address it is bound to (`config.metricsHost`). */
  host: string;
  /** Wraps every activity function so each attempt is counted and timed, and backups count their bytes. */
  instrument<A extends Record<string, (...args: never[]) => Promise<unknown>>>(activities: A): A;
  close(): Promise<void>;
}

function isBackupResult(value: unknown): value is StoreBackupResult {
  return (
    value !== null &&
    typeof value === 'object' &&
    'artifacts' in value &&
    Array.isArray(value.artifacts) &&
    'store' in value
  );
}

function isArchiveResult(value: unknown): value is ArchiveChatResult {
  return (
    value !== null &&
    typeof value === 'object' &&
    'archived' in value &&
    'deadLettered' in value &&
    'highestSequenceBySubject' in value
  );
}

/**
 * Starts the worker's Prometheus endpoint on `config.metricsPort` (`GET /metrics`): eloquent's own
 * per-activity counters and durations, bytes backed up, chat messages archived and stale
 * organizations, followed by Temporal's runtime metrics fetched from {@link temporalMetricsPort}
 * (when `Runtime.install` was given {@link temporalTelemetryOptions}).
 */
export async function startMetrics(options: MetricsOptions): Promise<MetricsEndpoint> {
  const metrics = new RecoveryMetrics();
  const { config } = options;
  const store = options.store ?? createBackupStore(config.backup);
  const model = options.model ?? DEFAULT_PLATFORM_MODEL;
  let stalenessAt = 0;

  const refreshStaleness = async (): Promise<void> => {
    if (!options.clients || Date.now() - stalenessAt < STALENESS_CACHE_MS) return;
    stalenessAt = Date.now();
    const report = await findStaleOrganizations(
      { postgres: options.clients.postgres, store, model },
      options.staleAfterMs ?? DEFAULT_STALE_AFTER_MS,
    );
    metrics.staleOrganizations.reset();
    metrics.staleOrganizations.set({}, report.stale.length);
    metrics.newestVerifiedBackupAge.reset();
    for (const s of report.stale)
      metrics.newestVerifiedBackupAge.set({ org_id: s.orgId }, s.ageMs === undefined ? -1 : Math.round(s.ageMs / 1000));
  };

  const temporalText = async (): Promise<string> => {
    if (config.metricsPort === 0 && options.port === undefined) return '';
    try {
      const response = await fetch(`http://127.0.0.1:${temporalMetricsPort(config)}/metrics`, {
        signal: AbortSignal.timeout(2_000),
      });
      return response.ok ? await response.text() : '';
    } catch {
      // Temporal's exporter is not installed (tests, or Runtime.install without telemetry): ours alone.
      return '';
    }
  };

  const server: Server = createServer((req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end('see /metrics\n');
      return;
    }
    void (async () => {
      let stalenessError = '';
      try {
        await refreshStaleness();
      } catch (err) {
        stalenessError = `# staleness check failed: ${err instanceof Error ? err.message.replace(/\n/g, ' ') : String(err)}\n`;
      }
      const body = `${metrics.expose()}\n${stalenessError}${await temporalText()}`;
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(body);
    })();
  });
  const port = options.port ?? config.metricsPort;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, config.metricsHost, () => resolve());
  });

  return {
    metrics,
    port: (server.address() as AddressInfo).port,
    host: (server.address() as AddressInfo).address,
    instrument(activities) {
      const wrapped: Record<string, (...args: never[]) => Promise<unknown>> = {};
      for (const [name, fn] of Object.entries(activities)) {
        wrapped[name] = async (...args: never[]) => {
          const started = performance.now();
          try {
            const result = await fn(...args);
            metrics.activityRuns.inc({ activity: name, outcome: 'ok' });
            if (isBackupResult(result)) {
              metrics.backupBytes.inc(
                { store: result.store },
                result.artifacts.reduce((sum, a) => sum + a.bytes, 0),
              );
              metrics.backupArtifacts.inc({ store: result.store }, result.artifacts.length);
            }
            if (isArchiveResult(result)) {
              metrics.chatArchived.inc({ outcome: 'archived' }, result.archived);
              metrics.chatArchived.inc({ outcome: 'dead_letter' }, result.deadLettered);
            }
            return result;
          } catch (err) {
            metrics.activityRuns.inc({ activity: name, outcome: 'failed' });
            throw err;
          } finally {
            metrics.activityDuration.observe({ activity: name }, (performance.now() - started) / 1000);
          }
        };
      }
      return Object.assign(Object.create(null) as object, activities, wrapped) as typeof activities;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
