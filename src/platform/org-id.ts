import { FailureType, permanentFailure } from '../errors';

/**
 * The documented rule for organization ids. Every store name (schema, database, subject, key) is
 * built from an id that passed this rule, so the rule is what keeps names injection-free and keeps
 * one organization's names from matching another's.
 */
export const ORG_ID_RULE =
  'an organization id is 1-40 characters of lower-case letters a-z, digits 0-9 and "_", starts and ends with a letter or digit, and never contains "__"';

/** `__` is excluded separately: the data map uses it as the separator of suffix schemas. */
const ORG_ID_PATTERN = /^[a-z0-9](?:[a-z0-9_]{0,38}[a-z0-9])?$/;

/** Longest id text quoted back in an error, so a megabyte of junk does not become a megabyte of log. */
const QUOTED_ID_MAX_CHARS = 60;

/** True when `value` is a valid organization id (see {@link ORG_ID_RULE}). */
export function isOrgId(value: unknown): value is string {
  return typeof value === 'string' && ORG_ID_PATTERN.test(value) && !value.includes('__');
}

/** The id as it appears in error messages: JSON-quoted, shortened when long, with its length. */
function quoteForMessage(value: unknown): string {
  if (typeof value !== 'string') return `a value of type ${value === null ? 'null' : typeof value}`;
  if (value.length <= QUOTED_ID_MAX_CHARS) return JSON.stringify(value);
  return `${JSON.stringify(value.slice(0, QUOTED_ID_MAX_CHARS))}… (${value.length} characters)`;
}

/**
 * Checks an organization id before any name is built from it.
 * @param value what the caller passed (workflow input, CLI argument, config).
 * @param field the name of the input field, quoted in the error so the caller knows what to fix.
 * @returns the id, unchanged.
 * @throws a non-retryable `ApplicationFailure` of type `InvalidOrganizationId` that quotes the id,
 *   the field and {@link ORG_ID_RULE}.
 */
export function parseOrgId(value: unknown, field = 'orgId'): string {
  if (isOrgId(value)) return value;
  throw permanentFailure(
    FailureType.InvalidOrganizationId,
    `${field}: invalid organization id ${quoteForMessage(value)}: ${ORG_ID_RULE}`,
  );
}
