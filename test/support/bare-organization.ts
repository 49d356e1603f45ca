import { organizationDataMap } from '../../src/platform/data-map';
import { ensurePlatformSchema } from '../../src/platform/platform-schema';
import { quotePgIdent } from '../../src/platform/quoting';
import type { StoreClients } from '../../src/store-clients';

/**
 * An organization with its row and an empty main schema, nothing else: the test creates the
 * objects it is about. Remove it with `dropSeededOrganization`.
 * @returns the main schema's name.
 */
export async function createBareOrganization(clients: StoreClients, orgId: string): Promise<string> {
  const schema = organizationDataMap(orgId).postgres.mainSchema;
  await ensurePlatformSchema(clients.postgres);
  await clients.postgres.query(`INSERT INTO public.organizations (id, name) VALUES ($1, $2)`, [
    orgId,
    `Organization ${orgId}`,
  ]);
  await clients.postgres.query(`CREATE SCHEMA ${quotePgIdent(schema)}`);
  return schema;
}
