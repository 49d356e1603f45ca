/**
 * The queue's classifier: every error of NATS JetStream is retried. What the queue activities meet
 * is a dropped connection, a server that restarts or a JetStream not ready yet, and each passes;
 * a stream that does not exist is no error at all (it holds nothing to count or purge, see
 * `isStreamNotFound`). The retry policy bounds the attempts, and a deletion parks with the reason
 * after `storeDownAfter`. Should a permanent JetStream error appear, it is decided here.
 */
export function classifyQueueError(err: unknown): unknown {
  return err;
}
