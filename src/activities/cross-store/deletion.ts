import { z } from 'zod';
import type { AppConfig } from '../../config';
import type { DeletionCertificate, PurgeStep, RemovedCounts } from '../../contracts/deletion';
import { FailureType, permanentFailure } from '../../errors';
import { organizationDataMap, type PlatformModel } from '../../platform/data-map';
import { describeOrganization, summarizeDescription, type OrganizationDescription } from '../../platform/describe';
import { parseOrgId } from '../../platform/org-id';
import { VERIFICATION_FILE, type BackupStore } from '../../storage/backup-store';
import type { KeyStore } from '../../storage/key-store';
import type { StoreClients } from '../../store-clients';
import { classifyClickHouseError } from '../clickhouse/errors';
import { purgeOrganizationClickHouse } from '../clickhouse/purge';
import { classifyPostgresError } from '../postgres/errors';
import { readOrganizationStatus, setOrganizationStatus } from '../postgres/organization-row';
import { purgeOrganizationSchemas, purgeOrganizationSharedRows } from '../postgres/purge';
import { classifyQueueError } from '../queue/errors';
import { purgeOrganizationQueue } from '../queue/purge';
import { classifyRedisError } from '../redis/errors';
import { purgeOrganizationRedis, revokeOrganizationSessions } from '../redis/purge';
import { readManifest } from '../storage/manifest';
import { startHeartbeats } from '../support/heartbeats';
import {
  createDeletionLogActivities,
  deletionInEffect,
  listLoggedOrganizations,
  readDeletionLog,
  recordCertificate,
} from './deletion-log';

export interface DeletionActivityDeps {
  config: AppConfig;
  clients: StoreClients;
  model: PlatformModel;
  store: BackupStore;
  /** Holds the organizations' data keys, for crypto-shredding. */
  keyStore: KeyStore;
}

/** The part of `verification.json` (see contracts/verification.ts) the certificate records. */
const verificationResult = z.object({ result: z.enum(['passed', 'failed', 'cancelled']) });

/** The store a deletion step touches, each with its store's one classifier (see `<store>/errors.ts`). */
type PurgedStore = 'postgres' | 'clickhouse' | 'queue' | 'redis';
const CLASSIFIERS: Record<PurgedStore, (err: unknown, orgId: string, object: string) => unknown> = {
  // PostgreSQL's and ClickHouse's own verdicts (a permission, a missing object) do not heal by
  // retrying: they become permanent failures naming store and object, so a deletion parks at once
  // with the reason instead of retrying for `storeDownAfter`.
  postgres: (err, orgId, object) => classifyPostgresError(err, orgId, 'the deletion step', object),
  clickhouse: classifyClickHouseError,
  queue: classifyQueueError,
  redis: classifyRedisError,
};

/** Which purge steps would remove what a description still lists. */
function stepsWithResidue(d: OrganizationDescription): PurgeStep[] {
  const steps: PurgeStep[] = [];
  if (d.queue.streams.some((s) => s.messages > 0)) steps.push('queue');
  if (d.redis.patterns.some((p) => p.keys > 0)) steps.push('redis');
  if (d.clickhouse.exists) steps.push('clickhouse');
  if (d.postgres.schemas.length > 0) steps.push('postgres-schemas');
  if (d.postgres.sharedRows.some((s) => s.rows > 0)) steps.push('postgres-shared-rows');
  return steps;
}

/**
 * Activities of organization deletion: the `deleting` mark, session revocation, one idempotent
 * purge per store, the residue check, the pre-deletion backup's facts, crypto-shredding and the
 * deletion log (see deletion-log.ts).
 */
export function createDeletionActivities(deps: DeletionActivityDeps) {
  const { clients, model, store } = deps;
  const { keyStore } = deps;
  const mapOf = (orgId: string) => organizationDataMap(orgId, model);
  const logDeps = { postgres: clients.postgres, store };

  /** Runs one purge with heartbeats (a killed worker is noticed within the heartbeat timeout). */
  async function purging<T>(store: PurgedStore, orgId: string, object: string, work: () => Promise<T>): Promise<T> {
    const beats = startHeartbeats(() => ({ store, object }));
    try {
      return await work();
    } catch (err) {
      throw CLASSIFIERS[store](err, orgId, object);
    } finally {
      beats.stop();
    }
  }

  return {
    ...createDeletionLogActivities(logDeps),

    /** The organization row's status (`active`, `deleting`, …), or `undefined` when it has no row. */
    async readOrganizationStatus(orgId: string): Promise<string | undefined> {
      const map = mapOf(orgId);
      return purging('postgres', map.orgId, 'organization status', () => readOrganizationStatus(clients.postgres, map));
    },

    /**
     * Marks the organization `deleting` (its users can no longer log in) when its status is
     * `expected` — what the workflow read before — or already `deleting` (a retry). Fails
     * non-retryable when someone changed the status in between.
     */
    async markOrganizationDeleting(input: { orgId: string; expected: string }): Promise<void> {
      const map = mapOf(input.orgId);
      const result = await purging('postgres', map.orgId, 'organization status', () =>
        setOrganizationStatus(clients.postgres, map, 'deleting', [input.expected, 'deleting']),
      );
      if (result.status !== 'deleting') {
        throw permanentFailure(
          FailureType.OperationConflict,
          `organization status changed to ${JSON.stringify(result.status ?? null)} while the deletion was starting; expected ${JSON.stringify(input.expected)}`,
          {
            store: 'postgres',
            orgId: map.orgId,
            object: 'organization status',
          },
        );
      }
    },

    /** Compensation of the mark: gives the row back `status`, only if it still reads `deleting`. */
    async restoreOrganizationStatus(input: { orgId: string; status: string }): Promise<{ status: string | undefined }> {
      const map = mapOf(input.orgId);
      const result = await purging('postgres', map.orgId, 'organization status', () =>
        setOrganizationStatus(clients.postgres, map, input.status, ['deleting']),
      );
      return { status: result.status };
    },

    /** Revokes every session of the organization in Redis (index, indexed and scanned session keys). */
    async revokeOrganizationSessions(orgId: string): Promise<number> {
      const map = mapOf(orgId);
      return purging('redis', map.orgId, map.redis.sessionIndexKey, () =>
        revokeOrganizationSessions(clients.redis, map),
      );
    },

    /** JetStream: purges the organization's subjects in every stream. */
    async purgeOrganizationQueue(orgId: string): Promise<RemovedCounts> {
      const map = mapOf(orgId);
      return purging('queue', map.orgId, map.queue.streams.map((s) => s.filterSubject).join(','), () =>
        purgeOrganizationQueue(clients.nats, deps.config.preflightTimeoutMs, map),
      );
    },

    /** Redis: SCAN + UNLINK of every key pattern of the organization. */
    async purgeOrganizationRedis(orgId: string): Promise<RemovedCounts> {
      const map = mapOf(orgId);
      return purging('redis', map.orgId, map.redis.keyPatterns.join(','), () =>
        purgeOrganizationRedis(clients.redis, map),
      );
    },

    /** ClickHouse: drops the organization's database. */
    async purgeOrganizationClickHouse(orgId: string): Promise<RemovedCounts> {
      const map = mapOf(orgId);
      return purging('clickhouse', map.orgId, map.clickhouse.database, () =>
        purgeOrganizationClickHouse(clients.clickhouse, map),
      );
    },

    /** PostgreSQL: drops the organization's schemas. */
    async purgeOrganizationSchemas(orgId: string): Promise<RemovedCounts> {
      const map = mapOf(orgId);
      return purging('postgres', map.orgId, map.postgres.schemas.join(','), () =>
        purgeOrganizationSchemas(clients.postgres, map),
      );
    },

    /** PostgreSQL: the organization's shared rows, children first, the organization row last. */
    async purgeOrganizationSharedRows(orgId: string): Promise<RemovedCounts> {
      const map = mapOf(orgId);
      return purging('postgres', map.orgId, 'shared tables', () => purgeOrganizationSharedRows(clients.postgres, map));
    },

    /**
     * What exists of the organization: `exists`, one line per object, and which purge steps would
     * remove it. The residue check and the validation of a re-applied deletion use it.
     */
    async describeForDeletion(orgId: string): Promise<{ exists: boolean; lines: string[]; steps: PurgeStep[] }> {
      const id = parseOrgId(orgId);
      const d = await purging('postgres', id, 'describe', () => describeOrganization(clients, id, model));
      return { exists: d.exists, lines: summarizeDescription(d), steps: stepsWithResidue(d) };
    },

    /** What the certificate records of the pre-deletion backup: artifacts with checksums, key id, verification. */
    async preDeletionBackupFacts(input: {
      orgId: string;
      backupId: string;
    }): Promise<Extract<DeletionCertificate['backup'], { skipped: false }>> {
      const manifest = await readManifest(store, input.orgId, input.backupId);
      const verification = await store.readJson({ orgId: input.orgId, backupId: input.backupId }, VERIFICATION_FILE);
      const report = verificationResult.safeParse(verification);
      return {
        skipped: false,
        backupId: manifest.backupId,
        verified: report.success && report.data.result === 'passed',
        ...(manifest.keyId ? { keyId: manifest.keyId } : {}),
        artifacts: manifest.artifacts.map((a) => ({ file: a.file, bytes: a.bytes, sha256: a.sha256, rows: a.rows })),
        fingerprintObjects: manifest.fingerprint.objects.length,
      };
    },

    /**
     * Crypto-shredding at the end of the retention: deletes every backup of the organization (held
     * ones too: the hold existed for this moment) and destroys its data key, so no copy of any
     * backup — the local one or a replica — stays readable by this project. Skipped when a restore
     * overrode the deletion (the organization lives again and its backups are its own). Updates the
     * certificate. Idempotent.
     */
    async shredOrganizationBackups(input: {
      orgId: string;
      deletionRunId: string;
    }): Promise<{ skipped?: string; removedBackups: string[]; destroyedKeyIds: string[] }> {
      const orgId = parseOrgId(input.orgId);
      const log = await readDeletionLog(store, orgId);
      const certificate = log.deletions.find((d) => d.runId === input.deletionRunId);
      const inEffect = deletionInEffect(log);
      if (
        certificate &&
        inEffect?.runId !== certificate.runId &&
        log.overrides.some((o) => o.deletionRunId === certificate.runId || o.recordedAt > certificate.pointOfNoReturnAt)
      ) {
        const skipped = `a restore overrode the deletion (${log.overrides.map((o) => `${o.restoreWorkflowId}: ${o.reason}`).join('; ')}); the organization's backups are kept`;
        await recordCertificate(logDeps, { ...certificate, retention: { ...certificate.retention, skipped } });
        return { skipped, removedBackups: [], destroyedKeyIds: [] };
      }
      const removedBackups: string[] = [];
      const beats = startHeartbeats(() => ({ orgId, removed: removedBackups.length }));
      try {
        for (const backup of await store.listBackups(orgId)) {
          await store.deleteBackup({ orgId, backupId: backup.backupId });
          removedBackups.push(backup.backupId);
        }
        const { destroyedKeyIds } = await keyStore.destroyDataKey(orgId);
        if (certificate) {
          // A retry keeps what an earlier attempt recorded: the key is destroyed once.
          const previous = certificate.retention;
          await recordCertificate(logDeps, {
            ...certificate,
            retention: {
              ...previous,
              shreddedAt: previous.shreddedAt ?? new Date().toISOString(),
              removedBackups: [...new Set([...(previous.removedBackups ?? []), ...removedBackups])],
              destroyedKeyIds: [...new Set([...(previous.destroyedKeyIds ?? []), ...destroyedKeyIds])],
            },
          });
        }
        return { removedBackups, destroyedKeyIds };
      } finally {
        beats.stop();
      }
    },

    /**
     * Organizations whose recorded deletion (completed, not overridden) is in effect although
     * something of them exists again — what a restore of an older platform or organization backup
     * brought back.
     */
    async findReappearedOrganizations(): Promise<{
      logged: number;
      reappeared: Array<{ orgId: string; deletionRunId: string; found: string[] }>;
    }> {
      let logged = 0;
      const reappeared: Array<{ orgId: string; deletionRunId: string; found: string[] }> = [];
      const beats = startHeartbeats(() => ({ logged, reappeared: reappeared.length }));
      try {
        for (const orgId of await listLoggedOrganizations(store)) {
          const deletion = deletionInEffect(await readDeletionLog(store, orgId));
          if (deletion?.status !== 'completed') continue;
          logged++;
          const d = await describeOrganization(clients, orgId, model);
          if (d.exists) reappeared.push({ orgId, deletionRunId: deletion.runId, found: summarizeDescription(d) });
        }
        return { logged, reappeared };
      } finally {
        beats.stop();
      }
    },
  };
}
