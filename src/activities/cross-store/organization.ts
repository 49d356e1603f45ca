import { FailureType, isTransientNetworkError, messageOf, permanentFailure } from '../../errors';
import { DEFAULT_PLATFORM_MODEL, type PlatformModel } from '../../platform/data-map';
import { describeOrganization, summarizeDescription, type OrganizationDescription } from '../../platform/describe';
import type { RowHashes } from '../../contracts/backup';
import { fingerprintOrganization, FINGERPRINT_STORES, type FingerprintStore, type OrganizationFingerprint } from '../../platform/fingerprint';
import { parseOrgId } from '../../platform/org-id';
import type { StoreClients } from '../../store-clients';

/** What the organization activities need: the store clients and the platform model. */
export interface OrganizationActivityDeps {
  clients: StoreClients;
  /** Until `PLATFORM_MODEL_FILE` is wired into the config, the default model. @default DEFAULT_PLATFORM_MODEL */
  model?: PlatformModel;
}

/** SQLSTATE classes that mean "the server is (re)starting or the connection broke": worth a retry. */
const TRANSIENT_SQLSTATE_CLASSES = new Set(['08', '53', '57']);

/**
 * Network trouble stays retryable (the workflow's retry policy bounds it). A PostgreSQL error with
 * a SQLSTATE outside the transient classes (a missing column, a permission) will not heal by
 * retrying and becomes permanent, naming the store. Other errors are rethrown unchanged: without
 * knowing their store they cannot be judged permanent.
 */
function classify(err: unknown, orgId: string, action: string): unknown {
  if (isTransientNetworkError(err)) return err;
  const code = (err as { code?: unknown } | null)?.code;
  const severity = (err as { severity?: unknown } | null)?.severity;
  if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && typeof severity === 'string' && !TRANSIENT_SQLSTATE_CLASSES.has(code.slice(0, 2))) {
    return permanentFailure(FailureType.StoreRejected, `${action} failed: ${messageOf(err)} (SQLSTATE ${code})`, { store: 'postgres', orgId }, err);
  }
  return err;
}

/** Read-only activities about one organization: what exists of it, and its content fingerprint. */
export function createOrganizationActivities(deps: OrganizationActivityDeps) {
  const model = deps.model ?? DEFAULT_PLATFORM_MODEL;
  return {
    /** What exists of the organization in every store; `exists: false` when nothing does. */
    async describeOrganization(orgId: string): Promise<OrganizationDescription> {
      const id = parseOrgId(orgId);
      try {
        return await describeOrganization(deps.clients, id, model);
      } catch (err) {
        throw classify(err, id, 'describeOrganization');
      }
    },
    /**
     * Per-object row counts and content hashes of the organization, in the given stores (all by
     * default); `options` names the row hashes of a manifest's fingerprint (the current ones by default).
     */
    async fingerprintOrganization(
      orgId: string,
      stores: FingerprintStore[] = [...FINGERPRINT_STORES],
      options: RowHashes = {},
    ): Promise<OrganizationFingerprint> {
      const id = parseOrgId(orgId);
      const unknown = stores.filter((s) => !FINGERPRINT_STORES.includes(s));
      if (unknown.length > 0) {
        throw permanentFailure(FailureType.InvalidInput, `stores: unknown store ${unknown.map((s) => JSON.stringify(s)).join(', ')}; expected some of ${FINGERPRINT_STORES.join(', ')}`);
      }
      try {
        return await fingerprintOrganization(deps.clients, id, stores, model, options);
      } catch (err) {
        throw classify(err, id, 'fingerprintOrganization');
      }
    },

    /** One line per thing that exists of the organization in any store; empty when nothing does. */
    async summarizeOrganization(orgId: string): Promise<string[]> {
      const id = parseOrgId(orgId);
      try {
        return summarizeDescription(await describeOrganization(deps.clients, id, model));
      } catch (err) {
        throw classify(err, id, 'summarizeOrganization');
      }
    },
  };
}
