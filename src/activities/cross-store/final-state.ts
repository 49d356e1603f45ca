// What a deletion does at its point of no return, before the first purge: stop every writer of the
// organization (its API keys, the project's own chat archival and fan-outs), then tell whether
// anything changed since the pre-deletion backup, so that the certificate names a backup holding
// the organization's last state. See workflows/delete-organization/final-state.ts.
import { pipeline } from 'node:stream/promises';
import type { Pool, PoolClient } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { manifestRowHashes } from '../../contracts/backup';
import { organizationDataMap, type OrganizationDataMap, type PlatformModel } from '../../platform/data-map';
import { fingerprintOrganization, type FingerprintStore, type ObjectFingerprint } from '../../platform/fingerprint';
import { compareObjectFingerprints } from '../../platform/fingerprint-compare';
import { ensurePlatformSchema, sharedTableSql } from '../../platform/platform-schema';
import { quotePgIdent } from '../../platform/quoting';
import type { BackupStore } from '../../storage/backup-store';
import type { StoreClients } from '../../store-clients';
import { classifyClickHouseError } from '../clickhouse/errors';
import { classifyPostgresError } from '../postgres/errors';
import { organizationsTable, sharedTableExists } from '../postgres/organization-row';
import { readManifest } from '../storage/manifest';
import { startHeartbeats } from '../support/heartbeats';

/**
 * The organization status that means "past the point of no return": nothing may write the
 * organization any more. `listOrganizationsPage` already leaves such organizations out, so every
 * fan-out (the schedules' chat archival and platform backups) skips them.
 */
export const SEALED_STATUS = 'deleted';

/** The platform's table of revoked API keys (see platform-schema.ts). */
export const API_KEY_REVOCATIONS_TABLE = 'eloquent_ops.api_key_revocations';

export interface FinalStateActivityDeps {
  clients: StoreClients;
  model: PlatformModel;
  store: BackupStore;
}

/** What {@link createFinalStateActivities}' `sealOrganizationForPurge` did. */
export interface SealResult {
  sealedAt: string;
  /** The organization's API keys, all revoked now (revoked by an earlier attempt included). */
  apiKeysRevoked: number;
  /** The organization row's status before the seal; `undefined` when it has no row. */
  statusBefore?: string;
}

/** What changed since a backup: the fingerprint objects that differ, besides the deletion's own marks. */
export interface ChangesSinceBackup {
  backupId: string;
  checkedAt: string;
  changedObjects: string[];
}

/** The API-key table of the model: the shared table named `api_keys` (absent in a model without one). */
function apiKeysTable(map: OrganizationDataMap) {
  return map.postgres.sharedTables.find((t) => t.table === 'api_keys');
}

/**
 * Holds a share lock on the organization row for `work`: the seal's row lock waits until `work` has
 * committed, and no `work` starts after the seal. Answers `sealed` (and runs nothing) once the
 * organization is past its point of no return. Without an organization row, runs `work` unfenced.
 */
export async function whileNotSealed<T>(
  postgres: Pool,
  map: OrganizationDataMap,
  work: () => Promise<T>,
): Promise<{ sealed: true } | { sealed: false; value: T }> {
  const table = organizationsTable(map);
  // PostgreSQL's own failures are classified here; what `work` throws is its store's, and passes as it is.
  const pg = <R>(run: () => Promise<R>) =>
    run().catch((err: unknown) => {
      throw classifyPostgresError(err, map.orgId, 'the write fence of the organization row', 'organization status');
    });
  const client = await pg(() => postgres.connect());
  try {
    await pg(() => client.query('BEGIN'));
    const found = await pg(async () =>
      (await sharedTableExists(client, table))
        ? client.query<{ status: string }>(
            `SELECT status FROM ${sharedTableSql(table)} WHERE ${quotePgIdent(table.keyColumn)} = $1 FOR SHARE`,
            [map.orgId],
          )
        : { rows: [] },
    );
    if (found.rows[0]?.status === SEALED_STATUS) return { sealed: true };
    const value = await work();
    await pg(() => client.query('COMMIT'));
    return { sealed: false, value };
  } finally {
    // After a COMMIT this does nothing; otherwise it releases the share lock.
    await client.query('ROLLBACK').catch(() => undefined);
    client.release();
  }
}

/** Whether the organization row, loaded from a backup's artifact, equals the live row except for `status`. */
async function organizationRowUnchanged(
  client: PoolClient,
  store: BackupStore,
  map: OrganizationDataMap,
  backup: { orgId: string; backupId: string; file: string; columns: string[] },
): Promise<boolean> {
  const table = organizationsTable(map);
  try {
    await client.query('BEGIN');
    await client.query(`CREATE TEMP TABLE backed_up_organization (LIKE ${sharedTableSql(table)}) ON COMMIT DROP`);
    const copy = client.query(
      copyFrom(`COPY backed_up_organization (${backup.columns.map(quotePgIdent).join(', ')}) FROM STDIN`),
    );
    await pipeline(
      await store.openArtifactReader({ orgId: backup.orgId, backupId: backup.backupId, path: backup.file }),
      copy,
    );
    // `status` is what the deletion itself changed (`deleting`, then the seal); anything else is the organization's.
    const same = await client.query<{ same: boolean }>(
      `SELECT coalesce((SELECT jsonb_agg(to_jsonb(b) - 'status') FROM backed_up_organization b)
                       = (SELECT jsonb_agg(to_jsonb(o) - 'status') FROM ${sharedTableSql(table)} o WHERE ${quotePgIdent(table.keyColumn)} = $1), false) AS same`,
      [map.orgId],
    );
    return same.rows[0]?.same === true;
  } finally {
    await client.query('ROLLBACK').catch(() => undefined);
  }
}

/**
 * Activities of a deletion's last state: the seal at the point of no return and the comparison
 * with the pre-deletion backup. PostgreSQL's verdicts become permanent failures by the SQLSTATE
 * table of postgres/errors.ts; anything else is retried.
 */
export function createFinalStateActivities(deps: FinalStateActivityDeps) {
  const { clients, model, store } = deps;
  const mapOf = (orgId: string) => organizationDataMap(orgId, model);

  return {
    /**
     * Seals the organization for its purge, in one transaction: every API key of it is listed in
     * `eloquent_ops.api_key_revocations` (the platform refuses a listed key), and its status becomes
     * `deleted`, which the chat archival checks under a share lock before each batch and the
     * fan-outs' listing leaves out. The row lock waits for a batch being written, so once this
     * returns nothing of the project writes the organization. Idempotent (a retry revokes nothing twice).
     */
    async sealOrganizationForPurge(input: {
      orgId: string;
      deletionWorkflowId: string;
      reason: string;
    }): Promise<SealResult> {
      const map = mapOf(input.orgId);
      const beats = startHeartbeats(() => ({ orgId: map.orgId, step: 'seal' }));
      const client = await clients.postgres.connect();
      try {
        // Creates the revocation table where the platform's schema predates it.
        await ensurePlatformSchema(client);
        const orgTable = organizationsTable(map);
        await client.query('BEGIN');
        const row = await client.query<{ status: string }>(
          `SELECT status FROM ${sharedTableSql(orgTable)} WHERE ${quotePgIdent(orgTable.keyColumn)} = $1 FOR UPDATE`,
          [map.orgId],
        );
        const statusBefore = row.rows[0]?.status;
        let apiKeysRevoked = 0;
        const keys = apiKeysTable(map);
        if (keys && (await sharedTableExists(client, keys))) {
          await client.query(
            `INSERT INTO ${API_KEY_REVOCATIONS_TABLE} (org_id, key_id, revoked_by, reason)
             SELECT ${quotePgIdent(keys.keyColumn)}, id, $2, $3 FROM ${sharedTableSql(keys)} WHERE ${quotePgIdent(keys.keyColumn)} = $1
             ON CONFLICT (org_id, key_id) DO NOTHING`,
            [map.orgId, input.deletionWorkflowId, input.reason],
          );
          const counted = await client.query<{ n: string }>(
            `SELECT count(*)::text AS n FROM ${sharedTableSql(keys)} k
              WHERE k.${quotePgIdent(keys.keyColumn)} = $1
                AND EXISTS (SELECT 1 FROM ${API_KEY_REVOCATIONS_TABLE} r WHERE r.org_id = $1 AND r.key_id = k.id)`,
            [map.orgId],
          );
          apiKeysRevoked = Number(counted.rows[0]?.n ?? 0);
        }
        if (statusBefore !== undefined) {
          await client.query(
            `UPDATE ${sharedTableSql(orgTable)} SET status = $2 WHERE ${quotePgIdent(orgTable.keyColumn)} = $1`,
            [map.orgId, SEALED_STATUS],
          );
        }
        await client.query('COMMIT');
        return {
          sealedAt: new Date().toISOString(),
          apiKeysRevoked,
          ...(statusBefore !== undefined ? { statusBefore } : {}),
        };
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw classifyPostgresError(err, map.orgId, 'sealing the organization for its purge', 'organization status');
      } finally {
        client.release();
        beats.stop();
      }
    },

    /**
     * The objects whose fingerprint differs from the backup's, in the stores it holds, with the
     * backup's own row hashes. The organization row counts as unchanged when only its `status`
     * differs: that is the deletion's mark, not the organization's data. Revocations live outside
     * the organization's rows, so they change nothing here.
     * @throws `UnknownBackup` when the backup has no manifest.
     */
    async changesSinceBackup(input: { orgId: string; backupId: string }): Promise<ChangesSinceBackup> {
      const map = mapOf(input.orgId);
      const beats = startHeartbeats(() => ({ orgId: map.orgId, backupId: input.backupId, step: 'fingerprint' }));
      try {
        const manifest = await readManifest(store, map.orgId, input.backupId);
        const rowHashes = manifestRowHashes(manifest);
        // Each store's fingerprint on its own, so a failure is classified by the store it came from.
        const fingerprintOf = async (s: FingerprintStore) => {
          try {
            return (await fingerprintOrganization(clients, map.orgId, [s], model, rowHashes)).objects;
          } catch (err) {
            throw s === 'clickhouse'
              ? classifyClickHouseError(err, map.orgId, map.clickhouse.database)
              : classifyPostgresError(err, map.orgId, 'fingerprinting the organization', s);
          }
        };
        const checkedAt = new Date().toISOString();
        const live: ObjectFingerprint[] = [];
        for (const s of manifest.stores) live.push(...(await fingerprintOf(s)));
        const differing = compareObjectFingerprints(manifest.fingerprint.objects, live)
          .filter((c) => !c.equal)
          .map((c) => c.object);
        const orgTable = organizationsTable(map);
        const orgObject = `shared:${orgTable.schema}.${orgTable.table}`;
        const artifact = manifest.artifacts.find((a) => a.object === orgObject);
        if (!differing.includes(orgObject) || !artifact?.columns) {
          return { backupId: input.backupId, checkedAt, changedObjects: differing };
        }
        const client = await clients.postgres.connect();
        try {
          const unchanged = await organizationRowUnchanged(client, store, map, {
            orgId: map.orgId,
            backupId: input.backupId,
            file: artifact.file,
            columns: artifact.columns,
          });
          return {
            backupId: input.backupId,
            checkedAt,
            changedObjects: unchanged ? differing.filter((o) => o !== orgObject) : differing,
          };
        } catch (err) {
          throw classifyPostgresError(err, map.orgId, 'comparing the organization row with the backup', orgObject);
        } finally {
          client.release();
        }
      } finally {
        beats.stop();
      }
    },
  };
}
