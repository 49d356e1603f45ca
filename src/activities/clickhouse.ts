import type { ClickHouseClient } from '@clickhouse/client';
import { addressOf } from '../config';
import type { StoreProbe } from '../contracts/preflight';
import { probeStore } from './probe';

export interface ClickHouseActivityDeps {
  clickhouse: ClickHouseClient;
  clickhouseUrl: string;
  timeoutMs: number;
}

export function createClickHouseActivities(deps: ClickHouseActivityDeps) {
  return {
    /** Reachability, version and round-trip time of the ClickHouse server (HTTP interface). */
    async probeClickHouse(): Promise<StoreProbe> {
      return probeStore('clickhouse', addressOf(deps.clickhouseUrl), deps.timeoutMs, async () => {
        const result = await deps.clickhouse.query({ query: 'SELECT version() AS version', format: 'JSONEachRow' });
        const rows = await result.json<{ version: string }>();
        return { version: rows[0]?.version ?? 'unknown' };
      });
    },
  };
}
