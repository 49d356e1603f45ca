import { Context } from '@temporalio/activity';
import {
  PLATFORM_MANIFEST_FORMAT_VERSION,
  platformManifestSchema,
  platformPartSchema,
  type PlatformManifest,
  type PlatformPart,
} from '../../contracts/platform-backup';
import { FailureType, permanentFailure } from '../../errors';
import { MANIFEST_FILE, VERIFICATION_FILE, type BackupStore } from '../../storage/backup-store';
import { CLICKHOUSE_PART_FILE } from '../clickhouse/platform';
import { PLATFORM_BACKUP_ORG, POSTGRES_PART_FILE } from '../postgres/platform';

const PART_FILES = { postgres: POSTGRES_PART_FILE, clickhouse: CLICKHOUSE_PART_FILE } as const;

/**
 * Writes a platform backup's manifest from the parts its dump activities wrote: last, so a platform
 * backup exists only once every part is in the store and every artifact hashes to what its part
 * recorded. Idempotent (a retry writes the same manifest).
 * @throws `UnknownBackup` when a part of `stores` is missing or invalid.
 */
export async function writePlatformManifest(
  store: BackupStore,
  input: { backupId: string; stores: Array<'postgres' | 'clickhouse'>; reason: string; workflowId: string },
): Promise<PlatformManifest> {
  const parts: PlatformPart[] = [];
  for (const name of input.stores) {
    const raw = await store.readJson({ orgId: PLATFORM_BACKUP_ORG, backupId: input.backupId }, PART_FILES[name]);
    const parsed = platformPartSchema.safeParse(raw);
    if (!parsed.success)
      throw permanentFailure(
        FailureType.UnknownBackup,
        `the ${name} part of platform backup ${input.backupId} is missing or invalid`,
        {
          store: 'storage',
          object: `${PLATFORM_BACKUP_ORG}/${input.backupId}/${PART_FILES[name]}`,
        },
      );
    parts.push(parsed.data);
  }
  for (const artifact of parts.flatMap((p) => p.artifacts)) {
    Context.current().heartbeat({ checking: artifact.file });
    const check = await store.verifyArtifactChecksum(
      { orgId: PLATFORM_BACKUP_ORG, backupId: input.backupId, path: artifact.file },
      artifact.sha256,
    );
    if (!check.matches)
      throw permanentFailure(
        FailureType.ChecksumMismatch,
        `artifact ${artifact.file} ${check.exists ? `hashes to ${check.actualSha256}, expected ${artifact.sha256}` : 'is missing'}`,
        { store: 'storage', orgId: PLATFORM_BACKUP_ORG, object: `${input.backupId}/${artifact.file}` },
      );
  }
  await store.removeTemporaryFiles({ orgId: PLATFORM_BACKUP_ORG, backupId: input.backupId });
  const keyId = parts.flatMap((p) => p.artifacts).find((a) => a.keyId !== undefined)?.keyId;
  const manifest: PlatformManifest = {
    formatVersion: PLATFORM_MANIFEST_FORMAT_VERSION,
    kind: 'platform',
    backupId: input.backupId,
    reason: input.reason,
    workflowId: input.workflowId,
    finishedAt: new Date().toISOString(),
    ...(keyId !== undefined ? { keyId } : {}),
    parts,
  };
  await store.writeJson({ orgId: PLATFORM_BACKUP_ORG, backupId: input.backupId }, MANIFEST_FILE, manifest);
  return manifest;
}

/**
 * A platform backup's manifest.
 * @throws `UnknownBackup` when it has none (it does not exist, never completed, or holds the globals alone).
 */
export async function readPlatformManifest(store: BackupStore, backupId: string): Promise<PlatformManifest> {
  const raw = await store.readJson({ orgId: PLATFORM_BACKUP_ORG, backupId }, MANIFEST_FILE);
  const parsed = platformManifestSchema.safeParse(raw);
  if (!parsed.success)
    throw permanentFailure(
      FailureType.UnknownBackup,
      raw === undefined
        ? `platform backup ${backupId} has no manifest (it does not exist or never completed)`
        : `platform backup ${backupId} holds no platform dump (a globals-only backup of older code, or an invalid manifest)`,
      { store: 'storage', object: `${PLATFORM_BACKUP_ORG}/${backupId}/${MANIFEST_FILE}` },
    );
  return parsed.data;
}

/** The part of one store of a platform backup. @throws `UnknownBackup` naming the backup and store. */
export async function readPlatformPart(
  store: BackupStore,
  backupId: string,
  name: 'postgres' | 'clickhouse',
): Promise<PlatformPart> {
  const part = (await readPlatformManifest(store, backupId)).parts.find((p) => p.store === name);
  if (!part)
    throw permanentFailure(FailureType.UnknownBackup, `platform backup ${backupId} holds no ${name} dump`, {
      store: 'storage',
      object: `${PLATFORM_BACKUP_ORG}/${backupId}`,
    });
  return part;
}

/** Writes a verification report beside a platform backup's manifest. */
export async function writePlatformVerification(store: BackupStore, backupId: string, report: unknown): Promise<void> {
  await store.writeJson({ orgId: PLATFORM_BACKUP_ORG, backupId }, VERIFICATION_FILE, report);
}
