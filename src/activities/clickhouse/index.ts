import type { ClickHouseClient } from '@clickhouse/client';
import { addressOf } from '../../config';
import type { StoreProbe } from '../../contracts/preflight';
import {
  CURRENT_CLICKHOUSE_ROW_HASH,
  type ClickHouseRowHash,
  type StoreBackupResult,
  type StoreProgressReport,
} from '../../contracts/backup';
import type { PlatformModel } from '../../platform/data-map';
import type { BackupStore } from '../../storage/backup-store';
import { backupClickHouse } from './backup';
import {
  dropClickHouseDatabase,
  restoreClickHouse,
  type RestoreClickHouseInput,
  type RestoreClickHouseResult,
} from './restore';
import { organizationDataMap } from '../../platform/data-map';
import { fingerprintClickHouse } from '../../platform/fingerprint-clickhouse';
import type { ObjectFingerprint } from '../../platform/fingerprint';
import { startHeartbeats, withHeartbeats } from '../support/heartbeats';
import { probeStore } from '../support/probe';
import { withClickHouseClassification } from './errors';
import {
  assertClickHouseTargetEmpty,
  dumpPlatformClickHouse,
  emptyClickHouseTarget,
  fingerprintPlatformClickHouseTarget,
  purgeOrganizationsFromClickHouseTarget,
  restorePlatformClickHouse,
} from './platform';
import { summarizePart, type PlatformPartSummary } from '../../contracts/platform-backup';
import { comparePlatformFingerprints, type PlatformComparison } from '../../platform/fingerprint-platform';
import { readPlatformPart } from '../storage/platform-manifest';
import { readManifest } from '../storage/manifest';
import {
  dropClickHouseAside,
  stageClickHouseSwap,
  swapClickHouseTables,
  undoClickHouseSwap,
  type ClickHouseStaging,
} from './swap';

export interface ClickHouseActivityDeps {
  clickhouse: ClickHouseClient;
  clickhouseUrl: string;
  timeoutMs: number;
  /** gzip level of backup exports (CLICKHOUSE_EXPORT_GZIP_LEVEL). */
  exportGzipLevel: number;
  store: BackupStore;
  model: PlatformModel;
  /** Sends in-flight backup progress to the calling workflow. */
  reportProgress?: (report: StoreProgressReport) => Promise<void>;
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

    /** Every table of the organization's database: CREATE statement and Native data; see backup.ts. */
    async backupClickHouse(input: { orgId: string; backupId: string }): Promise<StoreBackupResult> {
      return backupClickHouse(deps, input.orgId, input.backupId);
    },

    /** Every database of the server (organizations' and others) into `_platform/<backupId>`; see platform.ts. */
    async dumpPlatformClickHouse(input: { backupId: string }): Promise<PlatformPartSummary> {
      return summarizePart(await dumpPlatformClickHouse(deps, input.backupId));
    },

    /** Fails non-retryable `RestoreRefused`, naming what it found, unless the target server is empty. */
    async assertClickHouseTargetEmpty(input: { targetUrl: string }): Promise<void> {
      await assertClickHouseTargetEmpty(input.targetUrl);
    },

    /** Restores a platform backup's ClickHouse databases into the (empty) target server. */
    async restorePlatformClickHouse(input: {
      backupId: string;
      targetUrl: string;
    }): Promise<{ databases: string[]; tables: number; rows: number }> {
      const part = await readPlatformPart(deps.store, input.backupId, 'clickhouse');
      return restorePlatformClickHouse(deps, { ...input, part });
    },

    /** Fingerprints the target server and compares it with the platform backup's fingerprints. */
    async comparePlatformClickHouseTarget(input: {
      backupId: string;
      targetUrl: string;
      deletedOrgIds: string[];
    }): Promise<PlatformComparison> {
      const part = await readPlatformPart(deps.store, input.backupId, 'clickhouse');
      const heartbeats = startHeartbeats(() => ({ fingerprinting: 'the restore target' }));
      const actual = await withClickHouseClassification(undefined, 'the restore target', () =>
        fingerprintPlatformClickHouseTarget(deps, { targetUrl: input.targetUrl }),
      ).finally(() => heartbeats.stop());
      return comparePlatformFingerprints(part, actual, input.deletedOrgIds);
    },

    /** Drops organizations' databases again on a restored target. Idempotent. */
    async purgeOrganizationsFromClickHouseTarget(input: {
      targetUrl: string;
      orgIds: string[];
    }): Promise<{ removed: string[] }> {
      return withClickHouseClassification(undefined, 'the restore target', () =>
        purgeOrganizationsFromClickHouseTarget(deps, input),
      );
    },

    /** Returns a verification's scratch server to empty. */
    async resetScratchClickHouseServer(input: { targetUrl: string }): Promise<{ dropped: string[] }> {
      return withClickHouseClassification(undefined, 'the scratch server', () => emptyClickHouseTarget(input));
    },

    /** Restores a backup's ClickHouse part as `targetOrgId` (or into a scratch database). */
    async restoreClickHouse(input: RestoreClickHouseInput): Promise<RestoreClickHouseResult> {
      return restoreClickHouse(deps, input);
    },

    /** Drops a ClickHouse scratch database; only names of the scratch prefix are accepted. */
    async dropClickHouseScratch(input: { database: string }): Promise<void> {
      if (!/^eloquent_scratch_[a-z0-9_]{1,40}$/.test(input.database))
        throw new Error(`not a scratch database: ${input.database}`);
      await withClickHouseClassification(undefined, input.database, () =>
        dropClickHouseDatabase(deps.clickhouse, input.database),
      );
    },

    /**
     * Loads a backup's ClickHouse part into a staging database beside the target, for a swap; see
     * swap.ts. `swappable: false` says why the target must be cleared and loaded instead.
     */
    async stageClickHouseSwap(input: {
      orgId: string;
      backupId: string;
      targetOrgId: string;
      staging: string;
    }): Promise<ClickHouseStaging> {
      const map = organizationDataMap(input.targetOrgId, deps.model);
      const manifest = await readManifest(deps.store, input.orgId, input.backupId);
      const rows = new Map(
        manifest.artifacts
          .filter((a) => a.store === 'clickhouse' && a.object.startsWith('clickhouse:'))
          .map((a) => [a.object.slice('clickhouse:'.length), a.rows] as const),
      );
      return withClickHouseClassification(map.orgId, input.staging, () =>
        stageClickHouseSwap(deps.clickhouse, map, input.staging, rows, () =>
          restoreClickHouse(deps, {
            orgId: input.orgId,
            backupId: input.backupId,
            targetOrgId: input.targetOrgId,
            scratchDatabase: input.staging,
          }),
        ),
      );
    },

    /** Moves the target's tables aside and the staged ones into place (RENAME TABLE); see swap.ts. */
    async swapClickHouseTables(input: {
      orgId: string;
      staging: string;
      aside: string;
      stagedTables: string[];
    }): Promise<{ swappedIn: string[]; setAside: string[] }> {
      const map = organizationDataMap(input.orgId, deps.model);
      return withClickHouseClassification(map.orgId, map.clickhouse.database, () =>
        swapClickHouseTables(deps.clickhouse, map, input),
      );
    },

    /** Puts the target's original tables back from the aside database, whatever point the swap reached. */
    async undoClickHouseSwap(input: {
      orgId: string;
      staging: string;
      aside: string;
      stagedTables: string[];
    }): Promise<{ movedBack: string[] }> {
      const map = organizationDataMap(input.orgId, deps.model);
      return {
        movedBack: await withClickHouseClassification(map.orgId, map.clickhouse.database, () =>
          undoClickHouseSwap(deps.clickhouse, map, input),
        ),
      };
    },

    /** Drops the aside database of a finished swap (the target's former tables); gone already is fine. */
    async dropClickHouseAside(input: { aside: string }): Promise<void> {
      await withClickHouseClassification(undefined, input.aside, () =>
        dropClickHouseAside(deps.clickhouse, input.aside),
      );
    },

    /** Drops the organization's ClickHouse database (idempotent). */
    async clearOrganizationClickHouse(input: { orgId: string }): Promise<void> {
      const map = organizationDataMap(input.orgId, deps.model);
      await withClickHouseClassification(map.orgId, map.clickhouse.database, () =>
        dropClickHouseDatabase(deps.clickhouse, map.clickhouse.database),
      );
    },

    /** Fingerprints the organization's tables inside a scratch database. */
    async fingerprintClickHouseScratch(input: {
      orgId: string;
      database: string;
      rowHash?: ClickHouseRowHash;
    }): Promise<ObjectFingerprint[]> {
      const map = organizationDataMap(input.orgId, deps.model);
      // One table's hash is one query, which may run longer than the heartbeat timeout.
      return withHeartbeats(
        () => ({ fingerprinting: input.database }),
        () =>
          withClickHouseClassification(map.orgId, input.database, () =>
            fingerprintClickHouse(deps.clickhouse, map, {
              database: input.database,
              rowHash: input.rowHash ?? CURRENT_CLICKHOUSE_ROW_HASH,
            }),
          ),
      );
    },
  };
}
