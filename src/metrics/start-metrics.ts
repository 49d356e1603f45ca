import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TelemetryOptions } from '@temporalio/worker';
import type { Client } from '@temporalio/client';
import { DEFAULT_STALE_AFTER_MS, newestVerified } from '../activities/cross-store/staleness';
import { listOrganizationsPage } from '../activities/postgres/platform';
import { createStorageActivities } from '../activities/storage';
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
  /** With clients, `/metrics` also reports each organization's newest verified backup and the stale ones. */
  clients?: StoreClients;
  model?: PlatformModel;
  store?: BackupStore;
  /** With a Temporal client, `/metrics` also reports parked deletions (a visibility query). */
  temporal?: Client;
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
  /** Wraps every activity function so backups count their bytes and artifacts, chat archival its messages. */
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

/** Newest verified backup (start time, ms) of every organization in PostgreSQL; `undefined` when none. */
async function lastVerifiedBackups(
  clients: StoreClients,
  store: BackupStore,
  model: PlatformModel,
): Promise<Map<string, number | undefined>> {
  const storage = createStorageActivities({ store });
  const result = new Map<string, number | undefined>();
  let afterId = '';
  for (;;) {
    const page = await listOrganizationsPage({ postgres: clients.postgres, model }, afterId, 500);
    for (const orgId of page) {
      const verified = newestVerified(await storage.listBackups(orgId));
      result.set(orgId, verified ? Date.parse(verified.startedAt) : undefined);
    }
    const last = page[page.length - 1];
    if (page.length < 500 || last === undefined) return result;
    afterId = last;
  }
}

/** Organizations whose running deletion is parked: its memo says `PARKED …` (delete-organization/parking.ts). */
async function parkedDeletions(temporal: Client): Promise<string[]> {
  const parked: string[] = [];
  const query = "WorkflowType = 'deleteOrganization' AND ExecutionStatus = 'Running'";
  for await (const run of temporal.workflow.list({ query })) {
    const memo = run.memo?.deletion;
    if (typeof memo === 'string' && memo.startsWith('PARKED')) parked.push(run.workflowId.replace(/^delete-org-/, ''));
  }
  return parked.sort();
}

/**
 * Starts the worker's Prometheus endpoint on `config.metricsHost:config.metricsPort` (`GET /metrics`):
 * prom-client's process metrics, eloquent's own (bytes backed up, chat archived, each organization's
 * newest verified backup, stale organizations, parked deletions), followed by Temporal's runtime
 * metrics fetched from {@link temporalMetricsPort} (when `Runtime.install` was given
 * {@link temporalTelemetryOptions}). The organization and deletion series are refreshed at most
 * once a minute, on scrape: they list every organization's backups.
 */
export async function startMetrics(options: MetricsOptions): Promise<MetricsEndpoint> {
  const metrics = new RecoveryMetrics();
  const { config } = options;
  const store = options.store ?? createBackupStore(config.backup);
  const model = options.model ?? DEFAULT_PLATFORM_MODEL;
  const staleAfterMs = options.staleAfterMs ?? DEFAULT_STALE_AFTER_MS;
  let refreshedAt = 0;

  const refresh = async (): Promise<string> => {
    if (Date.now() - refreshedAt < STALENESS_CACHE_MS) return '';
    refreshedAt = Date.now();
    const notes: string[] = [];
    const attempt = async (source: string, work: () => Promise<void>) => {
      try {
        await work();
      } catch (err) {
        metrics.refreshErrors.inc({ source });
        notes.push(
          `# ${source} refresh failed: ${err instanceof Error ? err.message.replace(/\n/g, ' ') : String(err)}\n`,
        );
      }
    };
    const { clients, temporal } = options;
    await Promise.all([
      clients
        ? attempt('backups', async () =>
            metrics.setLastVerifiedBackups(await lastVerifiedBackups(clients, store, model), staleAfterMs, Date.now()),
          )
        : undefined,
      temporal
        ? attempt('deletions', async () => metrics.setParkedDeletions(await parkedDeletions(temporal)))
        : undefined,
    ]);
    return notes.join('');
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
      const notes = await refresh();
      const body = `${await metrics.registry.metrics()}\n${notes}${await temporalText()}`;
      res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(body);
    })().catch((err: unknown) => {
      res.writeHead(500).end(`metrics failed: ${err instanceof Error ? err.message : String(err)}\n`);
    });
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
          const result = await fn(...args);
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
        };
      }
      return Object.assign(Object.create(null) as object, activities, wrapped) as typeof activities;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
