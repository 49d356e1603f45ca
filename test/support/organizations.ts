import { rm } from 'node:fs/promises';
import * as path from 'node:path';
import { dropSeededOrganization } from '../../src/platform/seed-organization';
import type { TestWorker } from './test-worker';

/** Drops test organizations in every store and their backups; what is already gone is skipped. */
export async function dropTestOrganizations(env: TestWorker, orgIds: readonly string[]): Promise<void> {
  for (const orgId of orgIds) {
    await dropSeededOrganization(env.clients, orgId).catch(() => undefined);
    await rm(path.join(env.config.backup.directory, orgId), { recursive: true, force: true });
  }
}
