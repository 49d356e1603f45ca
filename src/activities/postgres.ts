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
        // "15.20 (Debian 15.20-0+deb12u1)": the number is the version, the rest is the packager.
        return { version: row?.version.split(' ')[0] ?? 'unknown', details: { database: row?.database ?? '' } };
      });
    },
  };
}
