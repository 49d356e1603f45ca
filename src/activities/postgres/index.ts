import type { Pool } from 'pg';
import { addressOf } from '../../config';
import type { StoreProbe } from '../../contracts/preflight';
import {
  CURRENT_POSTGRES_ROW_HASH,
  type PostgresPrivilegeFingerprint,
  type PostgresRowHash,
  type StoreBackupResult,
  type StoreProgressReport,
} from '../../contracts/backup';
import { organizationDataMap, type PlatformModel } from '../../platform/data-map';
import type { ObjectFingerprint } from '../../platform/fingerprint';
import { fingerprintPostgres } from '../../platform/fingerprint-postgres';
import type { BackupStore } from '../../storage/backup-store';
import type { StoreClients } from '../../store-clients';
import { startHeartbeats, withHeartbeats } from '../support/heartbeats';
import { probeStore } from '../support/probe';
import { backupPostgres } from './backup';
import { withPostgresClassification } from './errors';
import { assertOrganizationExists } from './organization-row';
import {
  assertPostgresTargetEmpty,
  dumpPlatformGlobals,
  dumpPlatformPostgres,
  fingerprintPlatformPostgresTarget,
  listOrganizationsPage,
  purgeOrganizationsFromTarget,
  redactedAddress,
  resetScratchPostgresCluster,
  restorePlatformPostgres,
} from './platform';
import { summarizePart, type PlatformPartSummary } from '../../contracts/platform-backup';
import { comparePlatformFingerprints, type PlatformComparison } from '../../platform/fingerprint-platform';
import { readPlatformPart } from '../storage/platform-manifest';
import { clearOrganizationPostgres } from './purge';
import { checkOrganizationBoundary } from './boundary';
import {
  checkPostgresRestore,
  restorePostgres,
  type RestorePostgresInput,
  type RestorePostgresResult,
} from './restore';
import { readManifest } from '../storage/manifest';
import { dropScratchDatabase } from './scratch';
import { dropPostgresAside, putPostgresAsideBack, setPostgresAside, type AsideSchema } from './aside';

export interface PostgresActivityDeps {
  postgres: Pool;
  openPostgresDatabase: StoreClients['openPostgresDatabase'];
  postgresUrl: string;
  binDir: string;
  /** `pg_restore --jobs` into scratch databases. */
  restoreJobs: number;
  timeoutMs: number;
  store: BackupStore;
  model: PlatformModel;
  /** Sends in-flight backup progress to the calling workflow. */
  reportProgress?: (report: StoreProgressReport) => Promise<void>;
}

/**
 * The PostgreSQL activities. Every one but the probe throws PostgreSQL's errors classified by the
 * SQLSTATE table of errors.ts; the probe reports any failure as the store being unreachable.
 */
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

    /** The organization's schemas and shared rows from one snapshot; see backup.ts. */
    async backupPostgres(input: { orgId: string; backupId: string }): Promise<StoreBackupResult> {
      return backupPostgres(deps, input.orgId, input.backupId);
    },

    /** Fails non-retryable with `UnknownOrganization` unless the organization's row exists. */
    async assertOrganizationExists(orgId: string): Promise<void> {
      const map = organizationDataMap(orgId, deps.model);
      await withPostgresClassification(map.orgId, 'assertOrganizationExists', () =>
        assertOrganizationExists(deps.postgres, map),
      );
    },

    /** `pg_dumpall --globals-only` into the platform folder of the backup store. */
    async dumpPlatformGlobals(input: { backupId: string }) {
      return withPostgresClassification(
        undefined,
        'dumpPlatformGlobals',
        () => dumpPlatformGlobals(deps, input.backupId),
        'globals',
      );
    },

    /** Every database of the cluster with its globals, restorable in parallel, into `_platform/<backupId>`; see platform.ts. */
    async dumpPlatformPostgres(input: { backupId: string }): Promise<PlatformPartSummary> {
      return summarizePart(await dumpPlatformPostgres(deps, input.backupId));
    },

    /** Fails non-retryable `RestoreRefused`, naming what it found, unless the target cluster is empty. */
    async assertPostgresTargetEmpty(input: { targetUrl: string }): Promise<void> {
      await assertPostgresTargetEmpty(input.targetUrl);
    },

    /** Restores a platform backup's globals and databases into the (empty) target cluster. */
    async restorePlatformPostgres(input: {
      backupId: string;
      targetUrl: string;
      jobs: number;
    }): Promise<{ databases: string[] }> {
      const part = await readPlatformPart(deps.store, input.backupId, 'postgres');
      return restorePlatformPostgres(deps, { ...input, part });
    },

    /**
     * Fingerprints the target cluster and compares it with the platform backup's fingerprints:
     * organizations in `deletedOrgIds` must be absent, all others equal, and so every table outside them.
     */
    async comparePlatformPostgresTarget(input: {
      backupId: string;
      targetUrl: string;
      deletedOrgIds: string[];
    }): Promise<PlatformComparison> {
      const part = await readPlatformPart(deps.store, input.backupId, 'postgres');
      const platformDatabase = part.platformDatabase ?? new URL(deps.postgresUrl).pathname.slice(1);
      const heartbeats = startHeartbeats(() => ({ fingerprinting: redactedAddress(input.targetUrl) }));
      const actual = await withPostgresClassification(
        undefined,
        'fingerprinting the restore target',
        () =>
          fingerprintPlatformPostgresTarget(deps, {
            targetUrl: input.targetUrl,
            platformDatabase,
            databases: part.databases,
          }),
        redactedAddress(input.targetUrl),
      ).finally(() => heartbeats.stop());
      return comparePlatformFingerprints(part, actual, input.deletedOrgIds);
    },

    /** Deletes organizations again on a restored target (schemas, shared rows, organization row). Idempotent. */
    async purgeOrganizationsFromPostgresTarget(input: {
      targetUrl: string;
      orgIds: string[];
    }): Promise<{ removed: string[] }> {
      const platformDatabase = new URL(deps.postgresUrl).pathname.slice(1);
      return withPostgresClassification(
        undefined,
        'deleting organizations again on the restore target',
        () => purgeOrganizationsFromTarget(deps, { ...input, platformDatabase }),
        redactedAddress(input.targetUrl),
      );
    },

    /** Returns a verification's scratch cluster to empty: every restored database and role dropped. */
    async resetScratchPostgresCluster(input: { targetUrl: string }): Promise<{ databases: string[]; roles: string[] }> {
      return withPostgresClassification(
        undefined,
        'emptying the scratch cluster',
        () => resetScratchPostgresCluster(input.targetUrl),
        redactedAddress(input.targetUrl),
      );
    },

    /** Organization ids after `afterId`, sorted, at most `limit`. */
    async listOrganizationsPage(input: { afterId: string; limit: number }): Promise<string[]> {
      return withPostgresClassification(undefined, 'listOrganizationsPage', () =>
        listOrganizationsPage(deps, input.afterId, input.limit),
      );
    },

    /** Restores a backup's PostgreSQL part as `targetOrgId` (or into a scratch database); see restore.ts. */
    async restorePostgres(input: RestorePostgresInput): Promise<RestorePostgresResult> {
      return restorePostgres(deps, input);
    },

    /**
     * Checks, changing nothing, that a restore of the backup's PostgreSQL part can run as asked
     * (archive entries, roles after `roleMapping`, extensions, dependents of the target's schemas);
     * fails non-retryable naming what to fix. `restorePostgres` checks the same before it clears.
     */
    async checkPostgresRestore(input: RestorePostgresInput): Promise<{ schemasArchive: boolean }> {
      const manifest = await readManifest(deps.store, input.orgId, input.backupId);
      const checked = await withPostgresClassification(input.targetOrgId, 'checkPostgresRestore', () =>
        checkPostgresRestore(deps, input, manifest),
      );
      return { schemasArchive: checked !== undefined };
    },

    /**
     * Checks, changing nothing, that deleting the organization removes exactly what its backup holds:
     * no table outside the data map holds its rows, no large objects, no stray types, and nothing
     * outside its schemas depends on them (DROP SCHEMA … CASCADE would drop it). A deletion's
     * preparation calls it before anything changes.
     */
    async checkPostgresDeletable(orgId: string): Promise<{ extensions: string[] }> {
      const map = organizationDataMap(orgId, deps.model);
      const extensions = await withPostgresClassification(map.orgId, 'checkPostgresDeletable', () =>
        checkOrganizationBoundary(deps.postgres, map, 'deletion'),
      );
      return { extensions: extensions.map((e) => e.name) };
    },

    /** Drops a scratch database of a verification or restore; gone already is fine. */
    async dropPostgresScratch(input: { database: string }): Promise<{ dropped: boolean }> {
      return {
        dropped: await withPostgresClassification(
          undefined,
          'dropPostgresScratch',
          () => dropScratchDatabase(deps.postgres, input.database),
          input.database,
        ),
      };
    },

    /**
     * Renames the organization's schemas aside (`<prefix>_<n>`) in one transaction, for a `replace`
     * that loads the backup under the real names; see aside.ts.
     */
    async setPostgresAside(input: { orgId: string; prefix: string }): Promise<AsideSchema[]> {
      const map = organizationDataMap(input.orgId, deps.model);
      return withPostgresClassification(map.orgId, 'setPostgresAside', () =>
        setPostgresAside(deps.postgres, map, input.prefix),
      );
    },

    /** Drops what a failed load left of the organization's schemas and renames the aside ones back, in one transaction. */
    async putPostgresAsideBack(input: { orgId: string; prefix: string }): Promise<AsideSchema[]> {
      const map = organizationDataMap(input.orgId, deps.model);
      return withPostgresClassification(map.orgId, 'putPostgresAsideBack', () =>
        putPostgresAsideBack(deps.postgres, map, input.prefix),
      );
    },

    /** Drops the schemas set aside under `prefix`: the last step of a `replace` whose new copy is in place. */
    async dropPostgresAside(input: { prefix: string }): Promise<{ dropped: string[] }> {
      return {
        dropped: await withPostgresClassification(undefined, 'dropPostgresAside', () =>
          dropPostgresAside(deps.postgres, input.prefix),
        ),
      };
    },

    /** Removes the organization's schemas and shared rows from the platform database (idempotent). */
    async clearOrganizationPostgres(input: { orgId: string }): Promise<{ schemas: string[]; rows: number }> {
      const map = organizationDataMap(input.orgId, deps.model);
      return withPostgresClassification(map.orgId, 'clearOrganizationPostgres', () =>
        clearOrganizationPostgres(deps.postgres, map),
      );
    },

    /** Fingerprints the organization's PostgreSQL objects inside a scratch database. */
    async fingerprintPostgresScratch(input: {
      orgId: string;
      database: string;
      rowHash?: PostgresRowHash;
      /** The manifest's `postgresPrivileges`; the current one when absent. */
      privileges?: PostgresPrivilegeFingerprint;
      /** Role names of this database mapped back to the backup's (a restore's `roleMapping`, reversed). */
      roleNames?: Record<string, string>;
    }): Promise<ObjectFingerprint[]> {
      const map = organizationDataMap(input.orgId, deps.model);
      const pool = deps.openPostgresDatabase(input.database, 1);
      try {
        // One table's hash is one query, which may run longer than the heartbeat timeout.
        return await withHeartbeats(
          () => ({ fingerprinting: input.database }),
          () =>
            withPostgresClassification(
              map.orgId,
              'fingerprintPostgresScratch',
              () =>
                fingerprintPostgres(pool, map, {
                  rowHash: input.rowHash ?? CURRENT_POSTGRES_ROW_HASH,
                  ...(input.privileges ? { privileges: input.privileges } : {}),
                  ...(input.roleNames ? { roleNames: input.roleNames } : {}),
                }),
              input.database,
            ),
        );
      } finally {
        await pool.end();
      }
    },
  };
}
