import { Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import type { AppConfig } from '../config';
import { BACKUP_PROGRESS_SIGNAL, type StoreProgressReport } from '../contracts/backup';
import { DEFAULT_PLATFORM_MODEL, type PlatformModel } from '../platform/data-map';
import type { BackupStore } from '../storage/backup-store';
import { createFilesystemBackupStore } from '../storage/filesystem-backup-store';
import type { StoreClients } from '../store-clients';
import { createChatArchiveActivities } from './cross-store/chat-archive';
import { createClickHouseActivities } from './clickhouse';
import { createDeletionActivities } from './cross-store/deletion';
import { createKubernetesActivities, loadKubeConfig } from './kubernetes';
import { createOperationActivities } from './cross-store/operation-conflicts';
import { createOrganizationActivities } from './cross-store/organization';
import { createPostgresActivities } from './postgres';
import { createQueueActivities } from './queue';
import { createRedisActivities } from './redis';
import { createStalenessActivities } from './cross-store/staleness';
import { createStorageActivities } from './storage';

export interface ActivityDeps {
  config: AppConfig;
  clients: StoreClients;
  /** Temporal client for visibility queries (which operations run on an organization). */
  temporal: Client;
  /** The organization data map's model. @default DEFAULT_PLATFORM_MODEL */
  model?: PlatformModel;
  /** Where backups live. @default the filesystem store of `config.backup` */
  store?: BackupStore;
}

/** Every activity of the worker, built from the injected store clients. */
export function createActivities(deps: ActivityDeps) {
  const { config, clients } = deps;
  const model = deps.model ?? DEFAULT_PLATFORM_MODEL;
  const store = deps.store ?? createFilesystemBackupStore(config.backup);
  const timeoutMs = config.preflightTimeoutMs;
  // Backup activities tell their workflow how far they are, so its progress query is live.
  const reportProgress = async (report: StoreProgressReport): Promise<void> => {
    const workflowId = Context.current().info.workflowExecution?.workflowId;
    if (workflowId) await deps.temporal.workflow.getHandle(workflowId).signal(BACKUP_PROGRESS_SIGNAL, report);
  };
  let kubeConfig: ReturnType<typeof loadKubeConfig> | undefined;
  const kube = config.kubernetes;
  return {
    ...createPostgresActivities({ postgres: clients.postgres, postgresUrl: config.postgres.url, binDir: config.postgres.binDir, timeoutMs, store, model, reportProgress }),
    ...createClickHouseActivities({ clickhouse: clients.clickhouse, clickhouseUrl: config.clickhouse.url, timeoutMs, exportGzipLevel: config.clickhouse.exportGzipLevel, store, model, reportProgress }),
    ...createQueueActivities({ nats: clients.nats, timeoutMs, model }),
    ...createRedisActivities({ redis: clients.redis, redisUrl: config.redis.url, timeoutMs, model }),
    ...createOrganizationActivities({ clients, model }),
    ...createStorageActivities({ store }),
    ...createChatArchiveActivities({ clickhouse: clients.clickhouse, nats: clients.nats, model }),
    ...createStalenessActivities({ postgres: clients.postgres, store, model }),
    ...createOperationActivities({ temporal: deps.temporal }),
    ...createDeletionActivities({ config, clients, model, store }),
    ...createKubernetesActivities({
      kubeConfig: () => (kubeConfig ??= loadKubeConfig({ kubeconfigPath: kube.kubeconfigPath, inCluster: kube.inCluster })),
      helmBin: kube.helmBin,
      kubeconfigPath: kube.inCluster ? undefined : kube.kubeconfigPath,
      namespace: kube.namespace,
      helmRelease: kube.helmRelease,
    }),
  };
}

export type Activities = ReturnType<typeof createActivities>;
