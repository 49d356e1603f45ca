import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnector } from '../store-clients';
import type { OrganizationDataMap, OrganizationStream } from './data-map';
import { formatHash, hash60, HASH_MODULUS } from './content-hash';
import type { ObjectFingerprint } from './fingerprint';
import { isStreamNotFound } from './platform-schema';

/** How long to wait for the next message before deciding a read is stuck, in milliseconds. */
const READ_IDLE_TIMEOUT_MS = 10_000;

/**
 * Messages per subject of the organization in one stream (JetStream `subjects_filter`), or
 * `undefined` when the stream does not exist.
 */
export async function organizationSubjectCounts(
  jsm: JetStreamManager,
  stream: OrganizationStream,
): Promise<Map<string, number> | undefined> {
  try {
    const info = await jsm.streams.info(stream.stream, { subjects_filter: stream.filterSubject });
    return new Map(Object.entries(info.state.subjects ?? {}));
  } catch (err) {
    if (isStreamNotFound(err)) return undefined;
    throw err;
  }
}

/**
 * Fingerprints the organization's messages, one object per stream (`queue:CHAT`): message count
 * and a sum of hashes of subject (id mapped out) and payload. Sequence numbers and timestamps are
 * left out: a republished copy gets new ones. Messages are read with an ordered consumer filtered
 * to the organization's subjects; the count comes from the stream's subject counts.
 */
export async function fingerprintQueue(nats: NatsConnector, map: OrganizationDataMap): Promise<ObjectFingerprint[]> {
  const nc = await nats.connection();
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  const objects: ObjectFingerprint[] = [];
  for (const stream of map.queue.streams) {
    const counts = await organizationSubjectCounts(jsm, stream);
    const expected = counts === undefined ? 0 : [...counts.values()].reduce((a, b) => a + b, 0);
    let sum = 0n;
    let rows = 0;
    if (expected > 0) {
      const consumer = await js.consumers.get(stream.stream, { filter_subjects: stream.filterSubject });
      const messages = await consumer.consume({ max_messages: 1000 });
      // Messages purged after the count was taken would leave the read waiting forever.
      let watchdog = setTimeout(() => messages.stop(), READ_IDLE_TIMEOUT_MS);
      try {
        for await (const m of messages) {
          clearTimeout(watchdog);
          watchdog = setTimeout(() => messages.stop(), READ_IDLE_TIMEOUT_MS);
          sum = (sum + hash60(map.mapOrgOut(m.subject), Buffer.from(m.data))) % HASH_MODULUS;
          rows++;
          if (m.info.pending === 0) break;
        }
      } finally {
        clearTimeout(watchdog);
        messages.stop();
        await consumer.delete().catch(() => undefined);
      }
    }
    objects.push({ store: 'queue', object: `queue:${stream.stream}`, rows, hash: formatHash(sum) });
  }
  return objects;
}
