import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import {
  backupManifestSchema,
  LEGACY_CLICKHOUSE_ROW_HASH,
  LEGACY_POSTGRES_ROW_HASH,
  MANIFEST_FORMAT_VERSION,
  type BackupManifest,
  type BackupStoreName,
  type StoreBackupResult,
} from '../../contracts/backup';
import { FailureType, permanentFailure } from '../../errors';
import { isOrgId, parseOrgId } from '../../platform/org-id';
import type { VerificationReport } from '../../contracts/verification';
import { MANIFEST_FILE, VERIFICATION_FILE, type BackupStore } from '../../storage/backup-store';
import { withHeartbeats } from '../support/heartbeats';
import { readManifest } from './manifest';
import { readPlatformManifest, writePlatformManifest, writePlatformVerification } from './platform-manifest';
import type { VerifyPlatformBackupResult } from '../../contracts/platform-backup';
import { decideRetention, type RetentionDecision, type RetentionPolicy } from '../../storage/retention';

/** A JSON document beside the manifest that keeps pruning away from a backup (e.g. a running deletion's). */
export const HOLD_FILE = 'hold.json';

export interface StorageActivityDeps {
  store: BackupStore;
}

export interface CommitBackupInput {
  orgId: string;
  backupId: string;
  workflowId: string;
  reason: string;
  startedAt: string;
  stores: BackupStoreName[];
  results: StoreBackupResult[];
  ephemeral: BackupManifest['ephemeral'];
}

/** One backup as `listBackups` shows it. */
export interface BackupListEntry {
  backupId: string;
  orgId: string;
  startedAt: string;
  finishedAt?: string;
  status: 'complete' | 'incomplete';
  storedBytes: number;
  artifacts: number;
  reason?: string;
  keyId?: string;
  verification?: { result: string; verifiedAt: string };
}

export function createStorageActivities(deps: StorageActivityDeps) {
  const { store } = deps;
  return {
    /**
     * Writes the manifest — last, atomically — after checking every artifact the stores reported is
     * committed with the checksum they reported. Removes temporary files of crashed attempts.
     */
    async commitBackup(input: CommitBackupInput): Promise<BackupManifest> {
      const artifacts = input.results.flatMap((r) => r.artifacts);
      for (const artifact of artifacts) {
        // One large artifact's hash may outlast the heartbeat timeout: beat while it is read.
        const check = await withHeartbeats(
          () => ({ checking: artifact.file }),
          () =>
            store.verifyArtifactChecksum(
              { orgId: input.orgId, backupId: input.backupId, path: artifact.file },
              artifact.sha256,
            ),
        );
        if (!check.matches) {
          throw permanentFailure(
            FailureType.ChecksumMismatch,
            `artifact ${artifact.file} ${check.exists ? `hashes to ${check.actualSha256}, expected ${artifact.sha256}` : 'is missing'}`,
            { store: 'storage', orgId: input.orgId, object: `${input.backupId}/${artifact.file}` },
          );
        }
      }
      await store.removeTemporaryFiles({ orgId: input.orgId, backupId: input.backupId });
      const versionOf = (store: BackupStoreName) => input.results.find((r) => r.store === store);
      const keyIds = [...new Set(artifacts.flatMap((a) => (a.keyId ? [a.keyId] : [])))];
      const manifest: BackupManifest = {
        formatVersion: MANIFEST_FORMAT_VERSION,
        backupId: input.backupId,
        orgId: input.orgId,
        reason: input.reason,
        workflowId: input.workflowId,
        startedAt: input.startedAt,
        finishedAt: new Date().toISOString(),
        stores: input.stores,
        serverVersions: {
          ...(versionOf('postgres')
            ? { postgres: versionOf('postgres')?.serverVersion, pgDump: versionOf('postgres')?.toolVersion }
            : {}),
          ...(versionOf('clickhouse') ? { clickhouse: versionOf('clickhouse')?.serverVersion } : {}),
        },
        ...(keyIds[0] ? { keyId: keyIds[0] } : {}),
        artifacts,
        fingerprint: {
          takenAt: input.startedAt,
          ...(versionOf('postgres')
            ? { postgresRowHash: versionOf('postgres')?.postgresRowHash ?? LEGACY_POSTGRES_ROW_HASH }
            : {}),
          ...(versionOf('postgres')?.postgresPrivileges
            ? { postgresPrivileges: versionOf('postgres')?.postgresPrivileges }
            : {}),
          ...(versionOf('clickhouse')
            ? { clickhouseRowHash: versionOf('clickhouse')?.clickhouseRowHash ?? LEGACY_CLICKHOUSE_ROW_HASH }
            : {}),
          objects: input.results.flatMap((r) => r.fingerprint),
        },
        pointsInTime: input.results.flatMap((r) => r.pointsInTime ?? []),
        ephemeral: input.ephemeral,
      };
      await store.writeJson(
        { orgId: input.orgId, backupId: input.backupId },
        MANIFEST_FILE,
        backupManifestSchema.parse(manifest),
      );
      return manifest;
    },

    /** Removes what an abandoned backup attempt wrote (no manifest exists, so it never "existed"). */
    async discardIncompleteBackup(input: { orgId: string; backupId: string }): Promise<{ deleted: boolean }> {
      if ((await store.readJson(input, MANIFEST_FILE)) !== undefined) return { deleted: false };
      return store.deleteBackup(input);
    },

    /** Backups of an organization, newest first, with size, status and verification result. */
    async listBackups(orgIdInput: string): Promise<BackupListEntry[]> {
      const orgId = parseOrgId(orgIdInput);
      const listings = await store.listBackups(orgId);
      const entries: BackupListEntry[] = [];
      for (const listing of listings) {
        const ref = { orgId, backupId: listing.backupId };
        const manifest = listing.complete
          ? backupManifestSchema.safeParse(await store.readJson(ref, MANIFEST_FILE))
          : undefined;
        const verification = listing.verified ? await store.readJson(ref, VERIFICATION_FILE) : undefined;
        const verified = verificationSummary(verification);
        entries.push({
          backupId: listing.backupId,
          orgId,
          startedAt: listing.startedAt,
          status: manifest?.success ? 'complete' : 'incomplete',
          storedBytes: listing.storedBytes,
          artifacts: listing.artifactCount,
          ...(manifest?.success
            ? {
                finishedAt: manifest.data.finishedAt,
                reason: manifest.data.reason,
                ...(manifest.data.keyId ? { keyId: manifest.data.keyId } : {}),
              }
            : {}),
          ...(verified ? { verification: verified } : {}),
        });
      }
      return entries;
    },

    /** Puts a hold on a backup: pruning never removes it until the hold is released. Idempotent. */
    async holdBackup(input: { orgId: string; backupId: string; heldBy: string; reason: string }): Promise<void> {
      await readManifest(store, input.orgId, input.backupId);
      await store.writeJson({ orgId: input.orgId, backupId: input.backupId }, HOLD_FILE, {
        heldBy: input.heldBy,
        reason: input.reason,
        since: new Date().toISOString(),
      });
    },

    /** Releases the hold on a backup, so pruning may remove it again. Idempotent. */
    async releaseBackupHold(input: { orgId: string; backupId: string }): Promise<{ released: boolean }> {
      return { released: (await store.deleteJson(input, HOLD_FILE)).deleted };
    },

    /**
     * Applies a retention policy to one organization's backups (see retention.ts): never the newest
     * complete backup, never a held one, never an incomplete one younger than a day.
     */
    async pruneOrganizationBackups(input: {
      orgId: string;
      policy: RetentionPolicy;
      dryRun: boolean;
    }): Promise<RetentionDecision & { orgId: string }> {
      const listings = await store.listBackups(input.orgId);
      const candidates = [];
      for (const listing of listings) {
        const held =
          (await store.readJson({ orgId: input.orgId, backupId: listing.backupId }, HOLD_FILE)) !== undefined;
        candidates.push({ backupId: listing.backupId, startedAt: listing.startedAt, complete: listing.complete, held });
      }
      const decision = decideRetention(candidates, input.policy, new Date());
      if (!input.dryRun) {
        for (const backupId of decision.remove) {
          Context.current().heartbeat({ removing: backupId });
          await store.deleteBackup({ orgId: input.orgId, backupId });
        }
      }
      return { orgId: input.orgId, ...decision };
    },

    /** Organizations that have backups in the store (never another application's folder beside them). */
    async listBackedUpOrganizations(): Promise<string[]> {
      return organizationsOf(store);
    },

    /**
     * Finds a backup: by id (in `orgId`'s folder, or searched across organizations), or the newest
     * complete backup of `orgId` when `latest`. @throws `UnknownBackup` naming what was looked for.
     */
    async locateBackup(input: {
      backupId?: string;
      orgId?: string;
      latest?: boolean;
      /** With `latest`: the newest backup whose verification passed, not merely the newest complete one. */
      verified?: boolean;
    }): Promise<{ orgId: string; backupId: string }> {
      if (input.latest) {
        const orgId = parseOrgId(input.orgId);
        const complete = (await store.listBackups(orgId)).filter((b) => b.complete);
        let newest: (typeof complete)[number] | undefined = complete[0];
        if (input.verified) {
          newest = undefined;
          for (const listing of complete) {
            if (!listing.verified) continue;
            const report = verificationSummary(
              await store.readJson({ orgId, backupId: listing.backupId }, VERIFICATION_FILE),
            );
            if (report?.result === 'passed') {
              newest = listing;
              break;
            }
          }
        }
        if (!newest)
          throw permanentFailure(
            FailureType.UnknownBackup,
            `organization ${orgId} has no ${input.verified ? 'verified' : 'complete'} backup${input.verified && complete.length > 0 ? ` (${complete.length} complete, none with a passed verification: run verifyBackup first)` : ''}`,
            { store: 'storage', orgId },
          );
        return { orgId, backupId: newest.backupId };
      }
      const backupId = input.backupId ?? '';
      const orgIds = input.orgId !== undefined ? [parseOrgId(input.orgId)] : await organizationsOf(store);
      for (const orgId of orgIds) {
        if ((await store.listBackups(orgId)).some((b) => b.backupId === backupId && b.complete))
          return { orgId, backupId };
      }
      throw permanentFailure(
        FailureType.UnknownBackup,
        `no complete backup with id ${JSON.stringify(backupId)}${input.orgId ? ` for organization ${input.orgId}` : ''}`,
        {
          store: 'storage',
          object: backupId,
        },
      );
    },

    /** The manifest of a backup, validated. */
    async readBackupManifest(input: { orgId: string; backupId: string }): Promise<BackupManifest> {
      return readManifest(store, input.orgId, input.backupId);
    },

    /**
     * Checks every artifact of the manifest: present, with the recorded size and SHA-256 of its stored
     * bytes. Returns one line per problem, naming the artifact and both checksums.
     */
    async checkBackupArtifacts(input: { orgId: string; backupId: string }): Promise<string[]> {
      const manifest = await readManifest(store, input.orgId, input.backupId);
      const problems: string[] = [];
      for (const artifact of manifest.artifacts) {
        const ref = { ...input, path: artifact.file };
        // The sidecar is authenticated as it is read: one edited or swapped in from another backup is named here.
        const stat = await store.statArtifact(ref).catch((err: unknown) => {
          if (err instanceof ApplicationFailure && err.type === FailureType.ChecksumMismatch) return err;
          throw err;
        });
        if (stat instanceof ApplicationFailure) {
          problems.push(`${artifact.file}: ${stat.message}`);
          continue;
        }
        if (stat.exists && (stat.sha256 !== artifact.sha256 || stat.bytes !== artifact.bytes))
          problems.push(
            `${artifact.file}: its metadata records SHA-256 ${stat.sha256}, manifest says ${artifact.sha256}`,
          );
        const check = await withHeartbeats(
          () => ({ checking: artifact.file }),
          () => store.verifyArtifactChecksum(ref, artifact.sha256),
        );
        if (!check.exists) problems.push(`${artifact.file}: missing`);
        else if (check.bytes !== artifact.bytes)
          problems.push(`${artifact.file}: ${check.bytes} bytes, manifest says ${artifact.bytes}`);
        else if (!check.matches)
          problems.push(`${artifact.file}: SHA-256 ${check.actualSha256}, manifest says ${artifact.sha256}`);
      }
      return problems;
    },

    /** Merges the parts of a platform backup into its manifest, written last; see platform-manifest.ts. */
    async commitPlatformBackup(input: {
      backupId: string;
      stores: Array<'postgres' | 'clickhouse'>;
      reason: string;
      workflowId: string;
    }): Promise<{ backupId: string; artifacts: number; bytes: number; organizations: string[] }> {
      const manifest = await writePlatformManifest(store, input);
      const artifacts = manifest.parts.flatMap((p) => p.artifacts);
      return {
        backupId: manifest.backupId,
        artifacts: artifacts.length,
        bytes: artifacts.reduce((sum, a) => sum + a.bytes, 0),
        organizations: [...new Set(manifest.parts.flatMap((p) => p.organizations.map((o) => o.orgId)))].sort(),
      };
    },

    /** What a platform backup holds: its stores and organizations (fails `UnknownBackup` without a platform dump). */
    async describePlatformBackup(input: {
      backupId: string;
    }): Promise<{ stores: Array<'postgres' | 'clickhouse'>; organizations: string[]; finishedAt: string }> {
      const manifest = await readPlatformManifest(store, input.backupId);
      return {
        stores: manifest.parts.map((p) => p.store),
        organizations: [...new Set(manifest.parts.flatMap((p) => p.organizations.map((o) => o.orgId)))].sort(),
        finishedAt: manifest.finishedAt,
      };
    },

    /** Writes `verification.json` of a platform backup. */
    async recordPlatformVerification(input: { backupId: string; report: VerifyPlatformBackupResult }): Promise<void> {
      await writePlatformVerification(store, input.backupId, input.report);
    },

    /** The backup's `verification.json`, or undefined when it was never verified. */
    async readBackupVerification(input: { orgId: string; backupId: string }): Promise<VerificationReport | undefined> {
      const report = await store.readJson(input, VERIFICATION_FILE);
      return verificationSummary(report) ? (report as VerificationReport) : undefined;
    },

    /** Writes `verification.json` beside the manifest (atomically). */
    async recordVerification(input: { orgId: string; backupId: string; report: VerificationReport }): Promise<void> {
      await store.writeJson({ orgId: input.orgId, backupId: input.backupId }, VERIFICATION_FILE, input.report);
    },
  };
}

/**
 * The folders of the store that are organizations': named by a valid organization id. A bucket (or
 * a BACKUP_DIR) is often shared — S3_PREFIX defaults to the bucket's root — and a folder of another
 * application (`Reports-2024/q1/manifest.json`) read as an organization would be pruned as one.
 * The `_` namespaces (`_platform`, `_deletions`) are no organization ids either.
 */
async function organizationsOf(store: BackupStore): Promise<string[]> {
  return (await store.listOrganizations()).filter((name) => isOrgId(name));
}

function verificationSummary(value: unknown): { result: string; verifiedAt: string } | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  const { result, verifiedAt } = value as { result?: unknown; verifiedAt?: unknown };
  return typeof result === 'string' && typeof verifiedAt === 'string' ? { result, verifiedAt } : undefined;
}
