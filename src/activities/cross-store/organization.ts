import { FailureType, permanentFailure } from '../../errors';
import type { PlatformModel } from '../../platform/data-map';
import { describeOrganization, summarizeDescription, type OrganizationDescription } from '../../platform/describe';
import type { RowHashes } from '../../contracts/backup';
import {
  fingerprintOrganization,
  FINGERPRINT_STORES,
  type FingerprintStore,
  type OrganizationFingerprint,
} from '../../platform/fingerprint';
import { parseOrgId } from '../../platform/org-id';
import type { StoreClients } from '../../store-clients';
import { classifyPostgresError } from '../postgres/errors';

/** What the organization activities need: the store clients and the platform model. */
export interface OrganizationActivityDeps {
  clients: StoreClients;
  /** The organization data map's model (`PLATFORM_MODEL_FILE`). */
  model: PlatformModel;
}

/**
 * Read-only activities about one organization: what exists of it, and its content fingerprint.
 * They read every store; PostgreSQL's verdicts (a missing column, a permission) become permanent by
 * the SQLSTATE table of postgres/errors.ts, other errors are rethrown for the retry policy.
 */
export function createOrganizationActivities(deps: OrganizationActivityDeps) {
  const { model } = deps;
  return {
    /** What exists of the organization in every store; `exists: false` when nothing does. */
    async describeOrganization(orgId: string): Promise<OrganizationDescription> {
      const id = parseOrgId(orgId);
      try {
        return await describeOrganization(deps.clients, id, model);
      } catch (err) {
        throw classifyPostgresError(err, id, 'describeOrganization');
      }
    },
    /**
     * Per-object row counts and content hashes of the organization, in the given stores (all by
     * default); `options` names the row hashes of a manifest's fingerprint (the current ones by default).
     */
    async fingerprintOrganization(
      orgId: string,
      stores: FingerprintStore[] = [...FINGERPRINT_STORES],
      options: RowHashes & { roleNames?: Record<string, string> } = {},
    ): Promise<OrganizationFingerprint> {
      const id = parseOrgId(orgId);
      const unknown = stores.filter((s) => !FINGERPRINT_STORES.includes(s));
      if (unknown.length > 0) {
        throw permanentFailure(
          FailureType.InvalidInput,
          `stores: unknown store ${unknown.map((s) => JSON.stringify(s)).join(', ')}; expected some of ${FINGERPRINT_STORES.join(', ')}`,
        );
      }
      try {
        return await fingerprintOrganization(deps.clients, id, stores, model, options);
      } catch (err) {
        throw classifyPostgresError(err, id, 'fingerprintOrganization');
      }
    },

    /** One line per thing that exists of the organization in any store; empty when nothing does. */
    async summarizeOrganization(orgId: string): Promise<string[]> {
      const id = parseOrgId(orgId);
      try {
        return summarizeDescription(await describeOrganization(deps.clients, id, model));
      } catch (err) {
        throw classifyPostgresError(err, id, 'summarizeOrganization');
      }
    },
  };
}
