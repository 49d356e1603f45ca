import { DELETION_DEFAULTS, deletionWorkflowId, type RemovedCounts } from '../../contracts/deletion';
import { BACKUP_STORES } from '../../contracts/backup';
import type { DeletionPlan, PlannedObject, PlannedPurgeStep, PlannedRename, RestorePlan } from '../../contracts/plans';
import { ORG_PLACEHOLDER, organizationDataMap, type PlatformModel } from '../../platform/data-map';
import { describeOrganization, type OrganizationDescription } from '../../platform/describe';
import { scanRedisKeys } from '../../platform/discovery';
import { parseOrgId } from '../../platform/org-id';
import type { BackupStore } from '../../storage/backup-store';
import type { StoreClients } from '../../store-clients';
import { classifyPostgresError } from '../postgres/errors';
import { readOrganizationStatus } from '../postgres/organization-row';
import { createStorageActivities } from '../storage';
import { readManifest } from '../storage/manifest';
import { deletionInEffect, readDeletionLog } from './deletion-log';

export interface PlanActivityDeps {
  clients: StoreClients;
  model: PlatformModel;
  store: BackupStore;
}

/** What an organization holds now, object by object, as the restore's `replace` or a deletion would remove it. */
function describedObjects(d: OrganizationDescription): PlannedObject[] {
  return [
    ...d.postgres.schemas.flatMap((s) =>
      s.tables.map((t): PlannedObject => ({
        store: 'postgres',
        object: `schema:${s.schema}.${t.table}`,
        rows: t.rows,
        bytes: t.bytes,
      })),
    ),
    ...d.postgres.sharedRows
      .filter((s) => s.rows > 0)
      .map((s): PlannedObject => ({ store: 'postgres', object: `shared:${s.table}`, rows: s.rows })),
    ...d.clickhouse.tables.map((t): PlannedObject => ({
      store: 'clickhouse',
      object: `clickhouse:${t.table}`,
      rows: t.rows,
      bytes: t.bytes,
    })),
  ];
}

const sum = (objects: readonly PlannedObject[], field: 'rows' | 'bytes') =>
  objects.reduce((n, o) => n + (o[field] ?? 0), 0);

/**
 * Plans of the destructive workflows' dry runs: read-only, they read the manifest and ask the stores
 * what they hold, with the same queries the real steps count with, so a plan's figures are the ones
 * the real run then reports (unless the organization changes in between).
 */
export function createPlanActivities(deps: PlanActivityDeps) {
  const { clients, model, store } = deps;
  const storage = createStorageActivities({ store });

  return {
    /**
     * What `restoreOrganization` would do with this backup and target: every object it writes
     * (renamed for a clone), what a `replace` removes, and why it would refuse. Changes nothing.
     */
    async planRestore(input: {
      orgId: string;
      backupId: string;
      targetOrgId: string;
      mode: 'into-empty' | 'replace';
      override: boolean;
    }): Promise<RestorePlan> {
      const sourceOrgId = parseOrgId(input.orgId);
      const targetOrgId = parseOrgId(input.targetOrgId, 'targetOrgId');
      const manifest = await readManifest(store, sourceOrgId, input.backupId);
      const refusals: string[] = [];
      const damaged = await storage.checkBackupArtifacts({ orgId: sourceOrgId, backupId: input.backupId });
      if (damaged.length > 0)
        refusals.push(`backup ${sourceOrgId}/${input.backupId} is damaged: ${damaged.join('; ')}`);
      const target = await describeOrganization(clients, targetOrgId, model).catch((err: unknown) => {
        throw classifyPostgresError(err, targetOrgId, 'planRestore');
      });
      const replace = describedObjects(target);
      if (input.mode === 'into-empty' && target.exists)
        refusals.push(
          `target organization ${targetOrgId} is not empty (use mode "replace" to overwrite it, after a safety backup)`,
        );
      const deletion = deletionInEffect(await readDeletionLog(store, targetOrgId));
      if (deletion && !input.override)
        refusals.push(
          `organization ${targetOrgId} was deleted by ${deletion.workflowId}; restoring it needs "override": {"reason": "..."}, which is recorded`,
        );
      const rename = (name: string, orgId: string) => name.split(ORG_PLACEHOLDER).join(orgId);
      const restored = manifest.fingerprint.objects.filter((o) => BACKUP_STORES.some((s) => s === o.store));
      const create = restored.map((o): PlannedObject => ({
        store: o.store,
        object: rename(o.object, targetOrgId),
        rows: o.rows,
      }));
      // Schemas as the fingerprint names them (`schema:org_{org}__agents.t`, `sequence:…`), so a
      // schema the data map discovered rather than declared is named too.
      const schemas = [
        ...new Set(
          restored.flatMap((o) => {
            const m = /^(?:schema|sequence):([^.]+)\./.exec(o.object);
            return m?.[1] ? [m[1]] : [];
          }),
        ),
      ].sort();
      const sourceMap = organizationDataMap(sourceOrgId, model);
      const targetMap = organizationDataMap(targetOrgId, model);
      const names: PlannedRename[] = [
        ...schemas.map((s): PlannedRename => ({
          store: 'postgres',
          kind: 'schema',
          from: rename(s, sourceOrgId),
          to: rename(s, targetOrgId),
        })),
        ...(manifest.stores.includes('postgres')
          ? sourceMap.postgres.sharedTables.map((t): PlannedRename => ({
              store: 'postgres',
              kind: 'shared rows',
              from: `${t.schema}.${t.table} ${t.keyColumn} = '${sourceOrgId}'`,
              to: `${t.schema}.${t.table} ${t.keyColumn} = '${targetOrgId}'`,
            }))
          : []),
        ...(manifest.stores.includes('clickhouse')
          ? [
              {
                store: 'clickhouse',
                kind: 'database',
                from: sourceMap.clickhouse.database,
                to: targetMap.clickhouse.database,
              } satisfies PlannedRename,
            ]
          : []),
      ];
      const artifacts = manifest.artifacts.map((a) => ({
        store: a.store,
        object: a.object,
        file: a.file,
        bytes: a.bytes,
        rows: a.rows,
      }));
      return {
        dryRun: true,
        backupId: manifest.backupId,
        sourceOrgId,
        targetOrgId,
        mode: input.mode,
        idMapping: { from: sourceOrgId, to: targetOrgId },
        names,
        create,
        artifacts,
        replace: input.mode === 'replace' ? replace : [],
        safetyBackup: input.mode === 'replace' && target.exists,
        ...(deletion
          ? {
              deletionRecord: {
                workflowId: deletion.workflowId,
                requestedBy: deletion.requestedBy,
                reason: deletion.reason,
              },
            }
          : {}),
        refusals,
        totals: {
          createObjects: create.length,
          createRows: sum(create, 'rows'),
          readBytes: artifacts.reduce((n, a) => n + a.bytes, 0),
          replaceObjects: input.mode === 'replace' ? replace.length : 0,
          replaceRows: input.mode === 'replace' ? sum(replace, 'rows') : 0,
        },
      };
    },

    /**
     * What `deleteOrganization` would remove, step by step, counted as each purge step counts for the
     * certificate: the queue's messages per stream, Redis keys per pattern (sessions apart: they are
     * revoked before the grace period), the ClickHouse database's tables and rows, the schemas'
     * tables and rows, the shared rows per table. Changes nothing.
     */
    async planDeletion(input: {
      orgId: string;
      skipBackup: boolean;
      reason: string;
      gracePeriod?: string;
    }): Promise<DeletionPlan> {
      const orgId = parseOrgId(input.orgId);
      const map = organizationDataMap(orgId, model);
      const refusals: string[] = [];
      const d = await describeOrganization(clients, orgId, model).catch((err: unknown) => {
        throw classifyPostgresError(err, orgId, 'planDeletion');
      });
      const status = await readOrganizationStatus(clients.postgres, map).catch((err: unknown) => {
        throw classifyPostgresError(err, orgId, 'planDeletion', 'organization status');
      });
      if (status === undefined)
        refusals.push(`organization ${JSON.stringify(orgId)} does not exist (no organization row)`);

      const { sessionKeyPrefix, sessionIndexKey } = map.redis;
      const sessionKeys = await scanRedisKeys(clients.redis, `${sessionKeyPrefix}*`);
      const sessionIndex = await clients.redis.exists(sessionIndexKey);
      const isSession = (key: string) => key === sessionIndexKey || key.startsWith(sessionKeyPrefix);
      const redisRemoved: RemovedCounts = { keys: 0 };
      const redisObjects: PlannedObject[] = [];
      for (const { pattern, template } of map.redis.patterns) {
        const keys = (await scanRedisKeys(clients.redis, pattern)).filter((k) => !isSession(k));
        redisRemoved[template] = keys.length;
        redisRemoved.keys = (redisRemoved.keys ?? 0) + keys.length;
        if (keys.length > 0) redisObjects.push({ store: 'redis', object: `redis:${pattern}`, rows: keys.length });
      }

      const queueRemoved: RemovedCounts = { messages: 0 };
      for (const s of d.queue.streams) {
        queueRemoved[s.stream] = s.messages;
        queueRemoved.messages = (queueRemoved.messages ?? 0) + s.messages;
      }
      const chTables = d.clickhouse.tables;
      const pgTables = d.postgres.schemas.flatMap((s) => s.tables);
      const sharedRemoved: RemovedCounts = { rows: 0 };
      for (const s of d.postgres.sharedRows) {
        sharedRemoved[s.table] = s.rows;
        sharedRemoved.rows = (sharedRemoved.rows ?? 0) + s.rows;
      }
      const objects = describedObjects(d);
      const purge: PlannedPurgeStep[] = [
        {
          step: 'queue',
          objects: d.queue.streams
            .filter((s) => s.messages > 0)
            .map((s): PlannedObject => ({
              store: 'queue',
              object: `${s.stream} ${s.filterSubject}`,
              rows: s.messages,
            })),
          removed: queueRemoved,
        },
        { step: 'redis', objects: redisObjects, removed: redisRemoved },
        {
          step: 'clickhouse',
          objects: objects.filter((o) => o.store === 'clickhouse'),
          removed: { tables: chTables.length, rows: chTables.reduce((n, t) => n + t.rows, 0) },
        },
        {
          step: 'postgres-schemas',
          objects: objects.filter((o) => o.object.startsWith('schema:')),
          removed: {
            schemas: d.postgres.schemas.length,
            tables: pgTables.length,
            rows: pgTables.reduce((n, t) => n + t.rows, 0),
          },
        },
        {
          step: 'postgres-shared-rows',
          objects: objects.filter((o) => o.object.startsWith('shared:')),
          removed: sharedRemoved,
        },
      ];
      const all = purge.flatMap((p) => p.objects);
      return {
        dryRun: true,
        orgId,
        workflowId: deletionWorkflowId(orgId),
        backup: input.skipBackup
          ? { skipped: true, reason: input.reason }
          : { skipped: false, stores: [...BACKUP_STORES], verify: true },
        ...(status !== undefined ? { status } : {}),
        sessionsRevoked: sessionKeys.length + sessionIndex,
        gracePeriod: input.gracePeriod ?? DELETION_DEFAULTS.gracePeriod,
        purge,
        refusals,
        totals: { objects: all.length, rows: sum(all, 'rows'), bytes: sum(all, 'bytes') },
      };
    },
  };
}
