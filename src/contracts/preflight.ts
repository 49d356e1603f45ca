import type { StoreName } from '../errors';

/** What one store answered to a preflight probe. */
export interface StoreProbe {
  store: StoreName;
  /** host:port the probe connected to. */
  address: string;
  /** The server's own version string. */
  version: string;
  /** Round-trip time of one trivial request, in milliseconds. */
  latencyMs: number;
  /** Store-specific facts worth showing an operator (e.g. JetStream streams, Redis memory). */
  details: Record<string, string | number | boolean>;
}

export interface PreflightInput {
  /** Stores to probe; all four by default. */
  stores?: PreflightStore[];
}

export type PreflightStore = 'postgres' | 'clickhouse' | 'queue' | 'redis';
export const PREFLIGHT_STORES: readonly PreflightStore[] = ['postgres', 'clickhouse', 'queue', 'redis'];

export interface PreflightReport {
  checkedAt: string;
  stores: StoreProbe[];
}
