// Time limits that grow with the work: hashing a backup's artifacts and fingerprinting its rows take
// as long as there are bytes and rows, so a fixed limit is either too short for a big organization
// (never verified, so never deletable) or too long to notice anything on a small one. A dead worker
// is noticed by the heartbeat timeout either way; the start-to-close limit only bounds a stuck call.
// Workflow-safe: arithmetic and proxies only.
import type { ActivityInterfaceFor } from '@temporalio/workflow';
import type { Activities } from '../../activities';
import { activityProxies } from './activity-proxies';

/** Every scaled limit starts here: what the fixed limits were. */
export const BASE_TIMEOUT_MS = 10 * 60_000;
/**
 * The slowest rate at which a worker is assumed to read and hash stored bytes (SHA-256 of a file or
 * an S3 download on a loaded machine): 8 MiB/s, about a twentieth of one core's SHA-256.
 */
export const HASHING_BYTES_PER_SECOND = 8 * 1024 * 1024;
/**
 * The slowest rate at which a server is assumed to fingerprint rows: 20 000 rows/s. Measured: the
 * PostgreSQL fingerprint of the benchmark's largest table runs at about 1 M rows/s, ClickHouse's
 * at 10 M rows/s (README, Benchmarks); wide rows and two busy cores are 50 times slower.
 */
export const FINGERPRINT_ROWS_PER_SECOND = 20_000;
/** A worker that stops heartbeating is given up after this long, and the call retried elsewhere. */
export const SCALED_HEARTBEAT_TIMEOUT_MS = 30_000;
/** No call is allowed more than a day, however large the numbers. */
const MAX_TIMEOUT_MS = 24 * 60 * 60_000;

/** Start-to-close limit of a call that hashes `bytes` stored bytes: {@link BASE_TIMEOUT_MS} plus their time. */
export function hashingTimeoutMs(bytes: number): number {
  return Math.min(MAX_TIMEOUT_MS, BASE_TIMEOUT_MS + Math.ceil((Math.max(0, bytes) / HASHING_BYTES_PER_SECOND) * 1000));
}

/** Start-to-close limit of a call that fingerprints `rows` rows: {@link BASE_TIMEOUT_MS} plus their time. */
export function fingerprintTimeoutMs(rows: number): number {
  return Math.min(
    MAX_TIMEOUT_MS,
    BASE_TIMEOUT_MS + Math.ceil((Math.max(0, rows) / FINGERPRINT_ROWS_PER_SECOND) * 1000),
  );
}

/** Backoff of scaled calls: as the quick ones (1 s to 30 s, 10 attempts). */
const SCALED_RETRY = { initialInterval: '1s', maximumInterval: '30s', maximumAttempts: 10 } as const;

/** Proxies for a call that hashes `bytes` stored bytes (committing or checking a backup's artifacts). */
export function hashingActivities(bytes: number): ActivityInterfaceFor<Activities> {
  return activityProxies({
    startToCloseTimeout: hashingTimeoutMs(bytes),
    heartbeatTimeout: SCALED_HEARTBEAT_TIMEOUT_MS,
    retry: SCALED_RETRY,
  });
}

/** Proxies for a call that fingerprints `rows` rows (a verification's scratch copies). */
export function fingerprintingActivities(rows: number): ActivityInterfaceFor<Activities> {
  return activityProxies({
    startToCloseTimeout: fingerprintTimeoutMs(rows),
    heartbeatTimeout: SCALED_HEARTBEAT_TIMEOUT_MS,
    retry: SCALED_RETRY,
  });
}
