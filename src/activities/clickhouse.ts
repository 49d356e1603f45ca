import type { ClickHouseClient } from '@clickhouse/client';
import { addressOf } from '../config';
import type { StoreProbe } from '../contracts/preflight';
import type { StoreBackupResult } from '../contracts/backup';
import type { PlatformModel } from '../platform/data-map';
import type { BackupStore } from '../storage/backup-store';
import { backupClickHouse } from './clickhouse-backup';
import { probeStore } from './probe';

export interface ClickHouseActivityDeps {
  clickhouse: ClickHouseClient;
  clickhouseUrl: string;
  timeoutMs: number;
  store: BackupStore;
  model: PlatformModel;
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

    /** Every table of the organization's database: CREATE statement and Native data; see clickhouse-backup.ts. */
    async backupClickHouse(input: { orgId: string; backupId: string }): Promise<StoreBackupResult> {
      return backupClickHouse(deps, input.orgId, input.backupId);
    },
  };
}
