import type { Pool } from 'pg';
import { addressOf } from '../../config';
import type { StoreProbe } from '../../contracts/preflight';
import type { StoreBackupResult, StoreProgressReport } from '../../contracts/backup';
import type { PlatformModel } from '../../platform/data-map';
import type { BackupStore } from '../../storage/backup-store';
import { organizationDataMap } from '../../platform/data-map';
import { assertOrganizationExists, backupPostgres } from './backup';
import { dumpPlatformGlobals, listOrganizationsPage } from './platform';
import { clearOrganizationPostgres, databaseUrl, dropScratchDatabase, restorePostgres, type RestorePostgresInput, type RestorePostgresResult } from './restore';
import { CURRENT_POSTGRES_ROW_HASH, type PostgresRowHash } from '../../contracts/backup';
import { fingerprintPostgres } from '../../platform/fingerprint-postgres';
import type { ObjectFingerprint } from '../../platform/fingerprint';
import { Pool as PgPool } from 'pg';
import { probeStore } from '../support/probe';

export interface PostgresActivityDeps {
  postgres: Pool;
  postgresUrl: string;
  binDir: string;
  timeoutMs: number;
  store: BackupStore;
  model: PlatformModel;
  /** Sends in-flight backup progress to the calling workflow. */
  reportProgress?: (report: StoreProgressReport) => Promise<void>;
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

    /** The organization's schemas and shared rows from one snapshot; see postgres-backup.ts. */
    async backupPostgres(input: { orgId: string; backupId: string }): Promise<StoreBackupResult> {
      return backupPostgres(deps, input.orgId, input.backupId);
    },

    /** Fails non-retryable with `UnknownOrganization` unless the organization's row exists. */
    async assertOrganizationExists(orgId: string): Promise<void> {
      await assertOrganizationExists(deps.postgres, organizationDataMap(orgId, deps.model));
    },

    /** `pg_dumpall --globals-only` into the platform folder of the backup store. */
    async dumpPlatformGlobals(input: { backupId: string }) {
      return dumpPlatformGlobals(deps, input.backupId);
    },

    /** Organization ids after `afterId`, sorted, at most `limit`. */
    async listOrganizationsPage(input: { afterId: string; limit: number }): Promise<string[]> {
      return listOrganizationsPage(deps, input.afterId, input.limit);
    },

    /** Restores a backup's PostgreSQL part as `targetOrgId` (or into a scratch database); see postgres-restore.ts. */
    async restorePostgres(input: RestorePostgresInput): Promise<RestorePostgresResult> {
      return restorePostgres(deps, input);
    },

    /** Drops a scratch database of a verification or restore; gone already is fine. */
    async dropPostgresScratch(input: { database: string }): Promise<{ dropped: boolean }> {
      return { dropped: await dropScratchDatabase(deps.postgres, input.database) };
    },

    /** Removes the organization's schemas and shared rows from the platform database (idempotent). */
    async clearOrganizationPostgres(input: { orgId: string }): Promise<{ schemas: string[]; rows: number }> {
      return clearOrganizationPostgres(deps.postgres, organizationDataMap(input.orgId, deps.model));
    },

    /** Fingerprints the organization's PostgreSQL objects inside a scratch database. */
    async fingerprintPostgresScratch(input: { orgId: string; database: string; rowHash?: PostgresRowHash }): Promise<ObjectFingerprint[]> {
      const pool = new PgPool({ connectionString: databaseUrl(deps.postgresUrl, input.database), max: 1 });
      pool.on('error', () => undefined);
      try {
        return await fingerprintPostgres(pool, organizationDataMap(input.orgId, deps.model), { rowHash: input.rowHash ?? CURRENT_POSTGRES_ROW_HASH });
      } finally {
        await pool.end();
      }
    },
  };
}
