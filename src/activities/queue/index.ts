import { jetstreamManager } from '@nats-io/jetstream';
import type { StoreProbe } from '../../contracts/preflight';
import type { NatsConnector } from '../../store-clients';
import { addressOf } from '../../config';
import { organizationDataMap, type PlatformModel } from '../../platform/data-map';
import { organizationSubjectCounts } from '../../platform/fingerprint-queue';
import { probeStore } from '../support/probe';

export interface QueueActivityDeps {
  nats: NatsConnector;
  timeoutMs: number;
  model: PlatformModel;
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
        return {
          version: nc.info?.version ?? 'unknown',
          details: { jetstreamStreams: account.streams, jetstreamBytes: account.storage },
        };
      });
    },

    /** Messages of the organization per stream and subject (recorded in a backup's manifest as left out). */
    async countQueueMessages(orgId: string): Promise<Array<{ stream: string; subject: string; messages: number }>> {
      const map = organizationDataMap(orgId, deps.model);
      const jsm = await jetstreamManager(await deps.nats.connection(), { timeout: deps.timeoutMs });
      const counts: Array<{ stream: string; subject: string; messages: number }> = [];
      for (const stream of map.queue.streams) {
        const subjects = await organizationSubjectCounts(jsm, stream);
        const messages = subjects ? [...subjects.values()].reduce((a, b) => a + b, 0) : 0;
        counts.push({ stream: stream.stream, subject: stream.filterSubject, messages });
      }
      return counts;
    },
  };
}
