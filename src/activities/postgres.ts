import type { Pool } from 'pg';
import { addressOf } from '../config';
import type { StoreProbe } from '../contracts/preflight';
import { probeStore } from './probe';

export interface PostgresActivityDeps {
  postgres: Pool;
  postgresUrl: string;
  timeoutMs: number;
}

export function createPostgresActivities(deps: PostgresActivityDeps) {
  return {
    /** Reachability, version and round-trip time of the platform database. */
    async probePostgres(): Promise<StoreProbe> {
      return probeStore('postgres', addressOf(deps.postgresUrl), deps.timeoutMs, async () => {
        const result = await deps.postgres.query<{ version: string; database: string }>(
          "SELECT current_setting('server_version') AS version, current_database() AS database",
        );
        const row = result.rows[0];
        return { version: row?.version ?? 'unknown', details: { database: row?.database ?? '' } };
      });
    },
  };
}
