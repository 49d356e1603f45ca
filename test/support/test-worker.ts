import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Runtime, type Worker } from '@temporalio/worker';
import { loadConfig, type AppConfig } from '../../src/config';
import { JsonLineLogger } from '../../src/logger';
import { loadPlatformModel } from '../../src/platform/data-map';
import { closeStoreClients, createStoreClients, type StoreClients } from '../../src/store-clients';
import { createWorker } from '../../src/worker';
import { WORKFLOW_BUNDLE_PATH } from './paths';

/** A real worker on the real dev server, on a task queue of its own, plus a client for it. */
export interface TestWorker {
  config: AppConfig;
  clients: StoreClients;
  client: Client;
  taskQueue: string;
  worker: Worker;
  /** Stops the worker, waits for it and closes every connection. */
  shutdown(): Promise<void>;
}

let runtimeInstalled = false;

/** Starts a worker for one test file. `env` overrides configuration (e.g. a store on a closed port). */
export async function startTestWorker(name: string, env: NodeJS.ProcessEnv = {}): Promise<TestWorker> {
  if (!runtimeInstalled) {
    Runtime.install({ logger: new JsonLineLogger('ERROR') });
    runtimeInstalled = true;
  }
  const config = loadConfig({ ...process.env, ...env });
  const clients = createStoreClients(config);
  const nativeConnection = await NativeConnection.connect({ address: config.temporal.address });
  const taskQueue = `test-${name}-${randomUUID().slice(0, 8)}`;
  const model = await loadPlatformModel(config.platformModelFile);
  const connection = await Connection.connect({ address: config.temporal.address });
  const client = new Client({ connection, namespace: config.temporal.namespace });
  const worker = await createWorker({
    config,
    clients,
    connection: nativeConnection,
    workflowBundlePath: WORKFLOW_BUNDLE_PATH,
    taskQueue,
    model,
    temporal: client,
  });
  const running = worker.run();
  return {
    config,
    clients,
    client,
    taskQueue,
    worker,
    async shutdown() {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running;
      await connection.close();
      await nativeConnection.close();
      await closeStoreClients(clients);
    },
  };
}

/** A unique, valid organization id for one test: tests never share organizations. */
export function uniqueOrgId(prefix = 't'): string {
  return `${prefix}_${Date.now().toString(36)}${randomUUID().replace(/-/g, '').slice(0, 6)}`;
}
