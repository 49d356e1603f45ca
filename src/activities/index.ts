import { Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import type { AppConfig } from '../config';
import { BACKUP_PROGRESS_SIGNAL, type StoreProgressReport } from '../contracts/backup';
import type { PlatformModel } from '../platform/data-map';
import type { BackupStore } from '../storage/backup-store';
import type { KeyStore } from '../storage/key-store';
import type { StoreClients } from '../store-clients';
import { createClickHouseActivities } from './clickhouse';
import { createChatArchiveActivities } from './cross-store/chat-archive';
import { createDeletionActivities } from './cross-store/deletion';
import { createFinalStateActivities } from './cross-store/final-state';
import { createOperationActivities } from './cross-store/operation-conflicts';
import { createOrganizationActivities } from './cross-store/organization';
import { createPlanActivities } from './cross-store/plans';
import { createStalenessActivities } from './cross-store/staleness';
import { createKubernetesActivities, type KubernetesActivityDeps } from './kubernetes';
import { createPostgresActivities } from './postgres';
import { createQueueActivities } from './queue';
import { createRedisActivities } from './redis';
import { createStorageActivities } from './storage';

/** Everything the activities are made from, each built once by the worker (see `createActivityDeps` in worker.ts). */
export interface ActivityDeps {
  config: AppConfig;
  clients: StoreClients;
  /** Temporal client for visibility queries (which operations run on an organization). */
  temporal: Client;
  /** The organization data map's model. */
  model: PlatformModel;
  /** Where backups live. */
  store: BackupStore;
  /** Holds the organizations' data keys; crypto-shredding destroys them. */
  keyStore: KeyStore;
  /** The Kubernetes credentials, or a function that loads them on first use. */
  kubeConfig: KubernetesActivityDeps['kubeConfig'];
}

/** Every activity of the worker: the factories of each store and of the cross-store work, merged. */
export function createActivities(deps: ActivityDeps) {
  const { config, clients, model, store } = deps;
  const timeoutMs = config.preflightTimeoutMs;
  // Backup activities tell their workflow how far they are, so its progress query is live.
  const reportProgress = async (report: StoreProgressReport): Promise<void> => {
    const workflowId = Context.current().info.workflowExecution?.workflowId;
    if (workflowId) await deps.temporal.workflow.getHandle(workflowId).signal(BACKUP_PROGRESS_SIGNAL, report);
  };
  const kube = config.kubernetes;
  return {
    ...createPostgresActivities({
      postgres: clients.postgres,
      openPostgresDatabase: clients.openPostgresDatabase,
      postgresUrl: config.postgres.url,
      binDir: config.postgres.binDir,
      restoreJobs: config.postgres.restoreJobs,
      timeoutMs,
      store,
      model,
      reportProgress,
    }),
    ...createClickHouseActivities({
      clickhouse: clients.clickhouse,
      clickhouseUrl: config.clickhouse.url,
      timeoutMs,
      exportGzipLevel: config.clickhouse.exportGzipLevel,
      store,
      model,
      reportProgress,
    }),
    ...createQueueActivities({ nats: clients.nats, timeoutMs, model }),
    ...createRedisActivities({ redis: clients.redis, redisUrl: config.redis.url, timeoutMs, model }),
    ...createOrganizationActivities({ clients, model }),
    ...createStorageActivities({ store }),
    ...createChatArchiveActivities({
      clickhouse: clients.clickhouse,
      postgres: clients.postgres,
      nats: clients.nats,
      model,
    }),
    ...createFinalStateActivities({ clients, model, store }),
    ...createStalenessActivities({ postgres: clients.postgres, store, model }),
    ...createOperationActivities({ temporal: deps.temporal }),
    ...createDeletionActivities({ config, clients, model, store, keyStore: deps.keyStore }),
    ...createPlanActivities({ clients, model, store }),
    ...createKubernetesActivities({
      kubeConfig: deps.kubeConfig,
      helmBin: kube.helmBin,
      kubeconfigPath: kube.inCluster ? undefined : kube.kubeconfigPath,
      namespace: kube.namespace,
      helmRelease: kube.helmRelease,
      helmValues: {
        store,
        redactKeyPattern: kube.helmValuesRedactKeys,
        ...(kube.helmValuesGitDir ? { gitDirectory: kube.helmValuesGitDir } : {}),
      },
    }),
  };
}

export type Activities = ReturnType<typeof createActivities>;
