import { jetstreamManager } from '@nats-io/jetstream';
import type { StoreProbe } from '../contracts/preflight';
import type { NatsConnector } from '../store-clients';
import { addressOf } from '../config';
import { probeStore } from './probe';

export interface QueueActivityDeps {
  nats: NatsConnector;
  timeoutMs: number;
}

export function createQueueActivities(deps: QueueActivityDeps) {
  return {
    /** Reachability, version and round-trip time of NATS, and that JetStream is enabled. */
    async probeQueue(): Promise<StoreProbe> {
      return probeStore('queue', addressOf(deps.nats.url), deps.timeoutMs, async () => {
        const nc = await deps.nats.connection();
        await nc.rtt();
        const jsm = await jetstreamManager(nc, { timeout: deps.timeoutMs });
        const account = await jsm.getAccountInfo();
        return { version: nc.info?.version ?? 'unknown', details: { jetstreamStreams: account.streams, jetstreamBytes: account.storage } };
      });
    },
  };
}
