/**
 * The demo: a worker in this process, then the operations through the Temporal client, printing
 * what an operator would want to see. Every run is visible in the Temporal UI (http://127.0.0.1:8233).
 */
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Runtime } from '@temporalio/worker';
import { loadConfig } from '../src/config';
import { JsonLineLogger } from '../src/logger';
import { loadPlatformModel } from '../src/platform/data-map';
import { OperationAttribute } from '../src/search-attributes';
import { closeStoreClients, createStoreClients } from '../src/store-clients';
import { createWorker } from '../src/worker';
import { platformPreflight } from '../src/workflows';

async function main(): Promise<void> {
  Runtime.install({ logger: new JsonLineLogger('WARN') });
  const config = loadConfig();
  const clients = createStoreClients(config);
  const nativeConnection = await NativeConnection.connect({ address: config.temporal.address });
  const connection = await Connection.connect({ address: config.temporal.address });
  const client = new Client({ connection, namespace: config.temporal.namespace });
  console.log('bundling workflows and starting a worker…');
  const model = await loadPlatformModel(config.platformModelFile);
  const worker = await createWorker({ config, clients, connection: nativeConnection, model, temporal: client });
  try {
    await worker.runUntil(async () => {
      const workflowId = `preflight-${new Date().toISOString().replace(/[:.]/g, '-')}`;
      const report = await client.workflow.execute(platformPreflight, {
        taskQueue: config.temporal.taskQueue,
        workflowId,
        args: [{}],
        typedSearchAttributes: [{ key: OperationAttribute, value: 'preflight' }],
      });
      console.log(`\nplatformPreflight ${workflowId}`);
      console.log(`${'store'.padEnd(12)}${'address'.padEnd(22)}${'version'.padEnd(12)}latency`);
      for (const probe of report.stores) {
        console.log(`${probe.store.padEnd(12)}${probe.address.padEnd(22)}${probe.version.padEnd(12)}${probe.latencyMs.toFixed(1)} ms`);
      }
      console.log(`\nSee it in the Temporal UI: http://127.0.0.1:8233/namespaces/${config.temporal.namespace}/workflows/${workflowId}`);
    });
  } finally {
    await connection.close();
    await nativeConnection.close();
    await closeStoreClients(clients);
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
