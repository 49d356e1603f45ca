/**
 * Redis's classifier: every error is retried. A refused connection, LOADING after a restart and
 * BUSY pass; so may NOPERM, which an operator fixes by changing the ACL while a deletion waits
 * (test/deletion-parked.test.ts parks on it after `storeDownAfter` and resumes on a signal). The
 * retry policy bounds the attempts. Should an error need to be final, it is decided here.
 */
export function classifyRedisError(err: unknown): unknown {
  return err;
}
