import { jetstreamManager } from '@nats-io/jetstream';
import type { RemovedCounts } from '../../contracts/deletion';
import type { OrganizationDataMap } from '../../platform/data-map';
import { isStreamNotFound } from '../../platform/platform-schema';
import type { NatsConnector } from '../../store-clients';

/**
 * Purges the organization's messages from every stream of the model, by filter subject
 * (`chat.<id>.>`): JetStream removes only messages on those subjects, so another organization's
 * messages — even `chat.<id>c.…` of a prefix neighbour, whose first token differs — stay. A missing
 * stream holds nothing to purge. Idempotent: a second purge removes 0 messages.
 * @returns `messages` (total) and the count per stream (`CHAT`, …).
 */
export async function purgeOrganizationQueue(
  nats: NatsConnector,
  timeoutMs: number,
  map: OrganizationDataMap,
): Promise<RemovedCounts> {
  const jsm = await jetstreamManager(await nats.connection(), { timeout: timeoutMs });
  const removed: RemovedCounts = { messages: 0 };
  for (const stream of map.queue.streams) {
    let purged = 0;
    try {
      purged = (await jsm.streams.purge(stream.stream, { filter: stream.filterSubject })).purged;
    } catch (err) {
      if (!isStreamNotFound(err)) throw err;
    }
    removed[stream.stream] = purged;
    removed.messages = (removed.messages ?? 0) + purged;
  }
  return removed;
}
