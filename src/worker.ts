import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import type { KubeConfig } from '@kubernetes/client-node';
import { NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { createActivities, type ActivityDeps } from './activities';
import { loadKubeConfig } from './activities/kubernetes';
import { loadConfig, temporalConnectionOptions, type AppConfig } from './config';
import { JsonLineLogger } from './logger';
import { startMetrics, temporalTelemetryOptions, type MetricsEndpoint } from './metrics/start-metrics';
import { loadPlatformModel, type PlatformModel } from './platform/data-map';
import type { BackupStore } from './storage/backup-store';
import { createBackupStore, createKeyStore } from './storage/configured-backup-store';
import { closeStoreClients, createStoreClients, type StoreClients } from './store-clients';

export interface WorkerOptions {
  config: AppConfig;
  clients: StoreClients;
  connection: NativeConnection;
  /** Pre-built workflow bundle (tests build it once); otherwise the workflows are bundled at start. */
  workflowBundlePath?: string;
  /** Overrides the configured task queue (tests use one queue per file). */
  taskQueue?: string;
  /** The organization data map's model, loaded from `config.platformModelFile`. */
  model: PlatformModel;
  /** Client the activities use for visibility queries. */
  temporal: Client;
  /** Where backups live; main() builds it once and shares it with the metrics endpoint. @default the store `config.backup.store` names */
  store?: BackupStore;
  /** Counts and times every activity attempt for the metrics endpoint. */
  instrument?: MetricsEndpoint['instrument'];
}

/**
 * What the activities are made from, each built once per worker: the backup store of
 * `config.backup` (unless given; filesystem or S3 by `BACKUP_STORE`), the key store crypto-shredding destroys keys in, and the
 * Kubernetes credentials, loaded on first use so a worker on a machine without a cluster still
 * starts and only the Kubernetes activities fail, naming the missing kubeconfig.
 */
export function createActivityDeps(
  options: Pick<WorkerOptions, 'config' | 'clients' | 'model' | 'temporal' | 'store'>,
): ActivityDeps {
  const { config } = options;
  const kube = config.kubernetes;
  let kubeConfig: KubeConfig | undefined;
  return {
    config,
    clients: options.clients,
    temporal: options.temporal,
    model: options.model,
    store: options.store ?? createBackupStore(config.backup),
    // Destroying a data key needs no master key: shredding works even where none is configured.
    keyStore: createKeyStore(config.backup, undefined),
    kubeConfig: () =>
      (kubeConfig ??= loadKubeConfig({ kubeconfigPath: kube.kubeconfigPath, inCluster: kube.inCluster })),
  };
}

/** Where `npm run bundle` writes the prebuilt workflow bundle, which a worker uses when it is there. */
export const DEFAULT_WORKFLOW_BUNDLE_PATH = path.join(
  // This file runs as src/worker.ts (tsx) or, built, as dist/src/worker.js: either way from the package root.
  path.basename(path.resolve(__dirname, '..')) === 'dist'
    ? path.resolve(__dirname, '..', '..')
    : path.resolve(__dirname, '..'),
  'dist',
  'workflow-bundle.js',
);

/**
 * The workflow bundle a worker loads: `WORKFLOW_BUNDLE_PATH`, else the one `npm run bundle` made
 * when present, else none (the worker bundles `src/workflows` at start, which takes webpack and
 * tens of seconds).
 */
export function workflowBundleToUse(configured: string | undefined): string | undefined {
  if (configured !== undefined) return configured;
  return existsSync(DEFAULT_WORKFLOW_BUNDLE_PATH) ? DEFAULT_WORKFLOW_BUNDLE_PATH : undefined;
}

/** A worker that runs every workflow and activity of eloquent-recovery on one task queue. */
export async function createWorker(options: WorkerOptions): Promise<Worker> {
  const { config, connection } = options;
  return Worker.create({
    connection,
    namespace: config.temporal.namespace,
    taskQueue: options.taskQueue ?? config.temporal.taskQueue,
    ...(options.workflowBundlePath
      ? { workflowBundle: { codePath: options.workflowBundlePath } }
      : { workflowsPath: require.resolve('./workflows') }),
    activities: (options.instrument ?? ((a) => a))(createActivities(createActivityDeps(options))),
    // On SIGINT/SIGTERM running activities get this long to finish before they are handed back.
    shutdownGraceTime: '30s',
  });
}

async function main(): Promise<void> {
  const config = loadConfig();
  const logger = new JsonLineLogger(config.logLevel);
  const telemetryOptions = temporalTelemetryOptions(config);
  Runtime.install({ logger, ...(telemetryOptions ? { telemetryOptions } : {}) });
  const model = await loadPlatformModel(config.platformModelFile);
  const clients = createStoreClients(config);
  const store = createBackupStore(config.backup);
  if (config.backup.store === 's3' && config.backup.masterKeyBase64 !== undefined) {
    // See configured-backup-store.ts: workers that do not share BACKUP_DIR would each make their own data keys.
    logger.warn(
      'backups go to S3 but the data keys stay in BACKUP_DIR: share that directory between workers and back it up, or encrypted artifacts become unreadable',
      {
        bucket: config.backup.s3.bucket,
        keysDirectory: config.backup.directory,
      },
    );
  }
  const connection = await NativeConnection.connect(temporalConnectionOptions(config.temporal));
  const clientConnection = await Connection.connect(temporalConnectionOptions(config.temporal));
  const temporal = new Client({ connection: clientConnection, namespace: config.temporal.namespace });
  const metrics = config.metricsPort > 0 ? await startMetrics({ config, clients, model, store, temporal }) : undefined;
  const workflowBundlePath = workflowBundleToUse(config.workflowBundlePath);
  try {
    const worker = await createWorker({
      config,
      clients,
      connection,
      model,
      temporal,
      store,
      ...(metrics ? { instrument: metrics.instrument } : {}),
      ...(workflowBundlePath ? { workflowBundlePath } : {}),
    });
    logger.info('worker started', {
      taskQueue: config.temporal.taskQueue,
      temporal: config.temporal.address,
      namespace: config.temporal.namespace,
      workflowBundle: workflowBundlePath ?? 'bundled at start',
    });
    await worker.run();
    logger.info('worker stopped');
  } finally {
    await metrics?.close();
    await clientConnection.close();
    await connection.close();
    await closeStoreClients(clients);
  }
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
