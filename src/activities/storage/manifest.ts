import { backupManifestSchema, type BackupManifest } from '../../contracts/backup';
import { FailureType, permanentFailure } from '../../errors';
import { MANIFEST_FILE, type BackupStore } from '../../storage/backup-store';

/** Reads and validates a backup's manifest. @throws `UnknownBackup` when it has none. */
export async function readManifest(store: BackupStore, orgId: string, backupId: string): Promise<BackupManifest> {
  const raw = await store.readJson({ orgId, backupId }, MANIFEST_FILE);
  if (raw === undefined) {
    throw permanentFailure(
      FailureType.UnknownBackup,
      `backup ${backupId} of organization ${orgId} has no manifest (it does not exist or never completed)`,
      {
        store: 'storage',
        orgId,
        object: `${orgId}/${backupId}`,
      },
    );
  }
  const parsed = backupManifestSchema.safeParse(raw);
  if (!parsed.success) {
    throw permanentFailure(
      FailureType.ChecksumMismatch,
      `manifest of backup ${backupId} is not valid: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
      {
        store: 'storage',
        orgId,
        object: `${orgId}/${backupId}/${MANIFEST_FILE}`,
      },
    );
  }
  return parsed.data;
}
