import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ClickHouseClient } from '@clickhouse/client';
import { Context } from '@temporalio/activity';
import { CURRENT_CLICKHOUSE_ROW_HASH, type ManifestArtifact } from '../../contracts/backup';
import type { PlatformOrganization, PlatformPart } from '../../contracts/platform-backup';
import { FailureType, permanentFailure } from '../../errors';
import {
  backupRefusal,
  dataObjectName,
  listClickHouseObjects,
  readCreateStatement,
} from '../../platform/clickhouse-catalog';
import { checkClickHouseStatementMovable, ddlFailure } from '../../platform/clickhouse-ddl';
import { organizationDataMap, type PlatformModel } from '../../platform/data-map';
import { fingerprintClickHouse } from '../../platform/fingerprint-clickhouse';
import {
  fingerprintClickHouseDatabase,
  listClickHouseDatabases,
  organizationOfClickHouseDatabase,
} from '../../platform/fingerprint-platform';
import { decodeObjectFileName, encodeObjectFileName } from '../../platform/object-file-name';
import { quoteClickHouseIdent, quoteClickHouseQualified } from '../../platform/quoting';
import type { BackupStore } from '../../storage/backup-store';
import { createClickHouseClient } from '../../store-clients';
import { writeFromStream } from '../support/artifact-stream';
import { startHeartbeats } from '../support/heartbeats';
import { PLATFORM_BACKUP_ORG } from '../postgres/platform';
import { exportTableToArtifact, maySetSettings, queryVersion } from './backup';
import { classifyClickHouseError } from './errors';
import { dropClickHouseDatabase, loadClickHouseObjects, type ClickHouseDatabaseArtifacts } from './restore';

/** The ClickHouse part of a platform backup, merged into its manifest last. */
export const CLICKHOUSE_PART_FILE = 'clickhouse-part.json';
/** `clickhouse/<database>/<object>.sql|.native`, both names encoded as one safe segment each. */
const platformObjectPath = (database: string, object: string, extension: 'sql' | 'native') =>
  `clickhouse/${encodeObjectFileName(database)}/${encodeObjectFileName(object)}.${extension}`;
const PLATFORM_OBJECT_PATH = /^clickhouse\/([^/]+)\/([^/]+)\.(sql|native)$/;

/** The database and object an artifact path names (the manifest's `object` is for people; the path is exact). */
function parsePlatformObjectPath(file: string): { database: string; object: string; kind: 'sql' | 'native' } {
  const match = PLATFORM_OBJECT_PATH.exec(file);
  if (!match?.[1] || !match[2] || !match[3])
    throw permanentFailure(FailureType.ChecksumMismatch, `not a platform ClickHouse artifact path: ${file}`, {
      store: 'clickhouse',
      object: file,
    });
  return {
    database: decodeObjectFileName(match[1]),
    object: decodeObjectFileName(match[2]),
    kind: match[3] === 'sql' ? 'sql' : 'native',
  };
}

export interface ClickHousePlatformDeps {
  clickhouse: ClickHouseClient;
  exportGzipLevel: number;
  store: BackupStore;
  model: PlatformModel;
}

/**
 * Every ClickHouse database but the system ones — the organizations' and those that belong to no
 * organization — exported like an organization backup exports its database (CREATE statement per
 * object, rows of the engines that own them in `Native`), then fingerprinted: an organization's
 * database as the organization, any other database table by table. ClickHouse has no snapshots:
 * each table is consistent on its own. Writes the part document; the workflow writes the manifest.
 */
export async function dumpPlatformClickHouse(deps: ClickHousePlatformDeps, backupId: string): Promise<PlatformPart> {
  const current = { object: '', bytes: 0 };
  const artifacts: ManifestArtifact[] = [];
  const heartbeats = startHeartbeats(() => ({ current, finished: artifacts.length }));
  try {
    const serverVersion = await queryVersion(deps.clickhouse);
    const compression = { server: await maySetSettings(deps.clickhouse) };
    const databases = await listClickHouseDatabases(deps.clickhouse);
    const catalog = new Map<string, Awaited<ReturnType<typeof listClickHouseObjects>>>();
    // Every object is checked before anything is written, so a refusal names it and leaves nothing behind.
    for (const database of databases) {
      const objects = await listClickHouseObjects(deps.clickhouse, database);
      for (const object of objects) {
        const refusal = backupRefusal(object);
        if (refusal)
          throw permanentFailure(
            FailureType.StoreRejected,
            `cannot back up table ${database}.${object.name}: ${refusal}`,
            {
              store: 'clickhouse',
              object: `${database}.${object.name}`,
            },
          );
      }
      catalog.set(database, objects);
    }
    const organizations: PlatformOrganization[] = [];
    const platformObjects: PlatformPart['platformObjects'] = [];
    for (const database of databases) {
      const orgId = organizationOfClickHouseDatabase(database, deps.model);
      for (const table of catalog.get(database) ?? []) {
        if (table.innerTableOf === undefined) {
          current.object = `clickhouse-ddl:${database}.${table.name}`;
          const statement = await readCreateStatement(deps.clickhouse, database, table);
          try {
            checkClickHouseStatementMovable(statement, database);
          } catch (err) {
            throw ddlFailure(err, orgId ?? PLATFORM_BACKUP_ORG, `${database}.${table.name}`, 'back up');
          }
          const file = platformObjectPath(database, table.name, 'sql');
          const record = await writeFromStream(
            deps.store,
            { orgId: PLATFORM_BACKUP_ORG, backupId, path: file },
            { alreadyCompressed: false },
            (sink) => pipeline(Readable.from([Buffer.from(`${statement}\n`)]), sink),
          );
          artifacts.push({ store: 'clickhouse', object: current.object, file, ...record, rows: null });
        }
        if (table.engineClass === 'data') {
          const name = dataObjectName(table);
          current.object = `clickhouse:${database}.${name}`;
          current.bytes = 0;
          const file = platformObjectPath(database, name, 'native');
          const exported = await exportTableToArtifact(
            deps,
            { orgId: PLATFORM_BACKUP_ORG, backupId, path: file },
            quoteClickHouseQualified(database, table.name),
            table.engine,
            compression,
            (n) => (current.bytes = n),
          );
          artifacts.push({ store: 'clickhouse', object: current.object, file, ...exported });
        }
      }
      current.object = `fingerprint of ${database}`;
      if (orgId !== undefined) {
        const map = organizationDataMap(orgId, deps.model);
        organizations.push({
          orgId,
          objects: await fingerprintClickHouse(deps.clickhouse, map, { rowHash: CURRENT_CLICKHOUSE_ROW_HASH }),
        });
      } else {
        platformObjects.push(
          ...(await fingerprintClickHouseDatabase(deps.clickhouse, database, CURRENT_CLICKHOUSE_ROW_HASH, deps.model)),
        );
      }
    }
    const part: PlatformPart = {
      store: 'clickhouse',
      serverVersion,
      databases,
      artifacts,
      organizations,
      platformObjects,
      rowHash: CURRENT_CLICKHOUSE_ROW_HASH,
    };
    await deps.store.writeJson({ orgId: PLATFORM_BACKUP_ORG, backupId }, CLICKHOUSE_PART_FILE, part);
    return part;
  } catch (err) {
    throw classifyClickHouseError(err, undefined, current.object || 'the platform dump');
  } finally {
    heartbeats.stop();
  }
}

/** Databases every fresh server has; `default` must hold no table. */
const FRESH_SERVER_DATABASES = ['default', 'system', 'INFORMATION_SCHEMA', 'information_schema'];

/** host:port of a URL, never its credentials. */
function address(url: string): string {
  const u = new URL(url);
  return `${u.hostname}:${u.port || '8123'}`;
}

/** Runs `work` with a client of the target server, closed afterwards. */
export async function withTargetClickHouse<T>(url: string, work: (client: ClickHouseClient) => Promise<T>): Promise<T> {
  const client = createClickHouseClient({ url });
  try {
    return await work(client);
  } finally {
    await client.close();
  }
}

/**
 * Refuses a target server that is not empty (a database besides the fresh server's, a table in
 * `default`), naming what it found, so a platform restore never overwrites a live server.
 */
export async function assertClickHouseTargetEmpty(targetUrl: string): Promise<void> {
  await withTargetClickHouse(targetUrl, async (client) => {
    try {
      const found = (await listClickHouseDatabases(client))
        .filter((d) => !FRESH_SERVER_DATABASES.includes(d))
        .map((d) => `database ${d}`);
      found.push(...(await listClickHouseObjects(client, 'default')).map((t) => `table default.${t.name}`));
      if (found.length > 0)
        throw permanentFailure(
          FailureType.RestoreRefused,
          `the target server is not empty (${found.slice(0, 10).join(', ')}${found.length > 10 ? ', …' : ''}); a platform restore needs a fresh server`,
          { store: 'clickhouse', object: address(targetUrl) },
        );
    } catch (err) {
      throw classifyClickHouseError(err, undefined, address(targetUrl));
    }
  });
}

/** The part's artifacts by database, from their paths. */
function artifactsByDatabase(part: PlatformPart): Map<string, ClickHouseDatabaseArtifacts> {
  const byDatabase = new Map<string, ClickHouseDatabaseArtifacts>(
    part.databases.map((d) => [d, { ddl: [], data: [] }]),
  );
  for (const artifact of part.artifacts) {
    const { database, object, kind } = parsePlatformObjectPath(artifact.file);
    const entry = byDatabase.get(database) ?? { ddl: [], data: [] };
    if (kind === 'sql') entry.ddl.push({ object, file: artifact.file });
    else entry.data.push({ object, file: artifact.file, rows: artifact.rows });
    byDatabase.set(database, entry);
  }
  return byDatabase;
}

/**
 * Restores a platform backup's ClickHouse part into an empty server (checked by the workflow first):
 * per database, the objects and rows as an organization restore loads them (restore.ts). A database
 * a failed attempt left half restored is dropped and loaded again; `default` is emptied of the
 * backup's objects instead, since it cannot be dropped.
 */
export async function restorePlatformClickHouse(
  deps: Pick<ClickHousePlatformDeps, 'store' | 'model'>,
  input: { backupId: string; targetUrl: string; part: PlatformPart },
): Promise<{ databases: string[]; tables: number; rows: number }> {
  const ctx = Context.current();
  const current = { table: '' };
  const heartbeats = startHeartbeats(() => current);
  return withTargetClickHouse(input.targetUrl, async (client) => {
    try {
      let tables = 0;
      let rows = 0;
      for (const [database, artifacts] of artifactsByDatabase(input.part)) {
        current.table = database;
        if (database === 'default') {
          for (const existing of await listClickHouseObjects(client, database))
            if (existing.innerTableOf === undefined)
              await client.command({
                query: `DROP TABLE IF EXISTS ${quoteClickHouseQualified(database, existing.name)}`,
              });
        } else {
          await dropClickHouseDatabase(client, database);
          await client.command({ query: `CREATE DATABASE ${quoteClickHouseIdent(database)}` });
        }
        const loaded = await loadClickHouseObjects(
          { clickhouse: client, store: deps.store },
          { orgId: PLATFORM_BACKUP_ORG, backupId: input.backupId },
          artifacts,
          {
            sourceDatabase: database,
            database,
            orgId: organizationOfClickHouseDatabase(database, deps.model) ?? PLATFORM_BACKUP_ORG,
          },
          current,
          ctx.cancellationSignal,
        );
        tables += loaded.tables;
        rows += loaded.rows;
      }
      return { databases: input.part.databases, tables, rows };
    } catch (err) {
      throw classifyClickHouseError(err, undefined, current.table || address(input.targetUrl));
    } finally {
      heartbeats.stop();
    }
  });
}

/** Fingerprints a restored server as the dump was fingerprinted, database by database. */
export async function fingerprintPlatformClickHouseTarget(
  deps: Pick<ClickHousePlatformDeps, 'model'>,
  input: { targetUrl: string },
): Promise<{ organizations: PlatformOrganization[]; platformObjects: PlatformPart['platformObjects'] }> {
  return withTargetClickHouse(input.targetUrl, async (client) => {
    const organizations: PlatformOrganization[] = [];
    const platformObjects: PlatformPart['platformObjects'] = [];
    for (const database of await listClickHouseDatabases(client)) {
      const orgId = organizationOfClickHouseDatabase(database, deps.model);
      if (orgId !== undefined) {
        const map = organizationDataMap(orgId, deps.model);
        organizations.push({
          orgId,
          objects: await fingerprintClickHouse(client, map, { rowHash: CURRENT_CLICKHOUSE_ROW_HASH }),
        });
      } else {
        platformObjects.push(
          ...(await fingerprintClickHouseDatabase(client, database, CURRENT_CLICKHOUSE_ROW_HASH, deps.model)),
        );
      }
    }
    return { organizations, platformObjects };
  });
}

/** Drops organizations' databases on a restored target (idempotent). */
export async function purgeOrganizationsFromClickHouseTarget(
  deps: Pick<ClickHousePlatformDeps, 'model'>,
  input: { targetUrl: string; orgIds: string[] },
): Promise<{ removed: string[] }> {
  return withTargetClickHouse(input.targetUrl, async (client) => {
    const present = new Set(await listClickHouseDatabases(client));
    const removed: string[] = [];
    for (const orgId of input.orgIds) {
      const database = organizationDataMap(orgId, deps.model).clickhouse.database;
      if (!present.has(database)) continue;
      await dropClickHouseDatabase(client, database);
      removed.push(orgId);
    }
    return { removed };
  });
}

/** Drops everything a verification restored on a scratch server, leaving it as fresh as it was. */
export async function emptyClickHouseTarget(input: { targetUrl: string }): Promise<{ dropped: string[] }> {
  return withTargetClickHouse(input.targetUrl, async (client) => {
    const dropped: string[] = [];
    for (const database of await listClickHouseDatabases(client)) {
      if (database === 'default') {
        for (const t of await listClickHouseObjects(client, database))
          if (t.innerTableOf === undefined)
            await client.command({ query: `DROP TABLE IF EXISTS ${quoteClickHouseQualified(database, t.name)}` });
        continue;
      }
      if (FRESH_SERVER_DATABASES.includes(database)) continue;
      await dropClickHouseDatabase(client, database);
      dropped.push(database);
    }
    return { dropped };
  });
}
