import { rm } from 'node:fs/promises';
import * as path from 'node:path';
import type { Client } from '@temporalio/client';
import type { DeletionStatus } from '../../src/contracts/deletion';
import { DEFAULT_PLATFORM_MODEL, ORG_PLACEHOLDER } from '../../src/platform/data-map';
import { fingerprintOrganization, type OrganizationFingerprint } from '../../src/platform/fingerprint';
import type { StoreClients } from '../../src/store-clients';
import { DELETION_LOG_ROOT } from '../../src/activities/cross-store/deletion-log';

/** Fingerprint objects of the organization's sessions: a cancelled deletion leaves them revoked, by design. */
const SESSION_OBJECTS = new Set([
  `redis:${DEFAULT_PLATFORM_MODEL.redis.sessionIndexKey}`,
  `redis:${DEFAULT_PLATFORM_MODEL.redis.sessionKeyPrefix}*`,
]);

/** True for the fingerprint objects of sessions (`redis:session:{org}:*`, `redis:sessions:{org}`). */
export function isSessionObject(object: string): boolean {
  return SESSION_OBJECTS.has(object) && object.includes(ORG_PLACEHOLDER);
}

/** The fingerprint without its session objects. */
export async function fingerprintWithoutSessions(
  clients: StoreClients,
  orgId: string,
): Promise<OrganizationFingerprint> {
  const fp = await fingerprintOrganization(clients, orgId);
  return { ...fp, objects: fp.objects.filter((o) => !isSessionObject(o.object)) };
}

/** Polls the deletion's status query until `until` holds (or fails after `timeoutMs`). */
export async function waitForDeletionStatus(
  client: Client,
  workflowId: string,
  until: (s: DeletionStatus) => boolean,
  timeoutMs = 90_000,
): Promise<DeletionStatus> {
  const deadline = Date.now() + timeoutMs;
  let last: DeletionStatus | undefined;
  for (;;) {
    try {
      last = await client.workflow.getHandle(workflowId).query<DeletionStatus>('deletionStatus');
      if (until(last)) return last;
    } catch {
      // The run may not have registered its query handler yet.
    }
    if (Date.now() > deadline)
      throw new Error(
        `deletion status did not reach the expected state within ${timeoutMs} ms; last: ${JSON.stringify(last)}`,
      );
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Terminates a workflow if it runs; used to stop a retention timer a test does not wait for. */
export async function terminateIfRunning(client: Client, workflowId: string): Promise<void> {
  await client.workflow
    .getHandle(workflowId)
    .terminate('test cleanup')
    .catch(() => undefined);
}

/** Removes what a deletion left in the backup store (backups, keys, deletion log) and the ops tables. */
export async function removeDeletionArtifacts(clients: StoreClients, backupDir: string, orgId: string): Promise<void> {
  await rm(path.join(backupDir, orgId), { recursive: true, force: true });
  await rm(path.join(backupDir, DELETION_LOG_ROOT, orgId), { recursive: true, force: true });
  await clients.postgres
    .query('DELETE FROM eloquent_ops.deletion_certificates WHERE org_id = $1', [orgId])
    .catch(() => undefined);
  await clients.postgres
    .query('DELETE FROM eloquent_ops.deletion_overrides WHERE org_id = $1', [orgId])
    .catch(() => undefined);
}
