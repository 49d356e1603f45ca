import { createHash, createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { FailureType, permanentFailure } from '../errors';
import type { DataKey } from './encryption';
import type { KeyStore } from './key-store';

/**
 * Authentication of what the backup store reads back: manifests and sidecars carry an HMAC-SHA-256
 * over their canonical JSON, bound to the organization, backup and (for a sidecar) artifact path, so
 * a document edited, or copied from another backup or path, fails to verify.
 *
 * The key: with a master key, derived (HKDF-SHA-256) from the organization's data key, so it is
 * crypto-shredded with the data; without one, derived from `BACKUP_AUTHENTICATION_SECRET` per
 * organization. With neither configured nothing can be authenticated and nothing is required.
 *
 * Documents written before authentication existed (manifest without `authentication`, sidecar format
 * 1) are refused whenever a key is configured, unless `BACKUP_ACCEPT_UNAUTHENTICATED` is on: the
 * document itself cannot tell an old backup from one whose authentication an attacker stripped, so
 * only the operator's configuration may decide that unauthenticated documents are acceptable.
 */

export const documentAuthenticationSchema = z.object({
  algorithm: z.literal('hmac-sha256'),
  /** `dk_…` (the data key it is derived from) or `sk_…` (the configured secret's id). */
  keyId: z.string().regex(/^(dk|sk)_[0-9a-f]{1,64}$/),
  mac: z.string().regex(/^[0-9a-f]{64}$/),
});
export type DocumentAuthentication = z.infer<typeof documentAuthenticationSchema>;

/** What a MAC covers besides the document: the kind of document and where it belongs. */
export interface DocumentBinding {
  purpose: 'manifest' | 'sidecar';
  orgId: string;
  backupId: string;
  /** The artifact's path, for a sidecar. */
  path?: string;
}

interface AuthenticationKey {
  keyId: string;
  key: Buffer;
}

/** JSON with object keys sorted and no whitespace: the same bytes for the same value, whatever the key order. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v === undefined ? null : v)).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

function deriveKey(secret: Buffer, label: string, orgId: string): Buffer {
  return Buffer.from(hkdfSync('sha256', secret, Buffer.from(label, 'utf8'), Buffer.from(orgId, 'utf8'), 32));
}

function macOf(key: AuthenticationKey, binding: DocumentBinding, document: unknown): string {
  const bound = [binding.purpose, binding.orgId, binding.backupId, binding.path ?? ''].join('\0');
  return createHmac('sha256', key.key)
    .update(`eloquent-recovery/${binding.purpose}/v1\0${bound}\0`)
    .update(canonicalJson(document))
    .digest('hex');
}

export interface BackupAuthenticatorOptions {
  keyStore: KeyStore;
  /** `BACKUP_AUTHENTICATION_SECRET`, decoded; at least 32 bytes. */
  secret?: Buffer;
  /** `BACKUP_ACCEPT_UNAUTHENTICATED`. @default false */
  acceptUnauthenticated?: boolean;
}

/** Signs and verifies the store's documents; see the module comment for keys and the downgrade rule. */
export class BackupAuthenticator {
  private readonly keyStore: KeyStore;
  private readonly secret: Buffer | undefined;
  private readonly secretId: string | undefined;
  readonly acceptUnauthenticated: boolean;

  constructor(options: BackupAuthenticatorOptions) {
    this.keyStore = options.keyStore;
    this.acceptUnauthenticated = options.acceptUnauthenticated ?? false;
    if (options.secret !== undefined && options.secret.length < 32)
      throw new RangeError('BACKUP_AUTHENTICATION_SECRET must hold at least 32 bytes');
    this.secret = options.secret;
    this.secretId =
      options.secret === undefined
        ? undefined
        : `sk_${createHash('sha256').update('eloquent-recovery/authentication-secret-id/v1\0').update(options.secret).digest('hex').slice(0, 16)}`;
  }

  /** True when a key is configured, so documents must be authenticated (unless unauthenticated ones are accepted). */
  get configured(): boolean {
    return this.keyStore.masterKeyId !== undefined || this.secret !== undefined;
  }

  /** The key new documents of `orgId` are signed with: `dataKey` when encrypting, else the secret's; none when neither. */
  private signingKey(orgId: string, dataKey: DataKey | undefined): AuthenticationKey | undefined {
    if (dataKey)
      return { keyId: dataKey.keyId, key: deriveKey(dataKey.key, 'eloquent-recovery/authentication/v1', orgId) };
    if (this.secret && this.secretId)
      return { keyId: this.secretId, key: deriveKey(this.secret, 'eloquent-recovery/authentication-secret/v1', orgId) };
    return undefined;
  }

  /**
   * The authentication of a new document, or `undefined` when no key is configured.
   * With a master key the organization's data key is used (created if it has none yet).
   */
  async sign(binding: DocumentBinding, document: unknown): Promise<DocumentAuthentication | undefined> {
    const dataKey =
      this.keyStore.masterKeyId !== undefined ? await this.keyStore.getOrCreateDataKey(binding.orgId) : undefined;
    const key = this.signingKey(binding.orgId, dataKey);
    return key ? { algorithm: 'hmac-sha256', keyId: key.keyId, mac: macOf(key, binding, document) } : undefined;
  }

  /**
   * Checks `authentication` of `document` (without its `authentication` field).
   * @param name the document, named in the failure (`org/backup/manifest.json`).
   * @throws ApplicationFailure `ChecksumMismatch` naming the document when the MAC does not match, its
   *   key is not configured, or it is unauthenticated while authentication is required;
   *   `DecryptionFailed` when its data key cannot be unwrapped.
   */
  async verify(
    binding: DocumentBinding,
    document: unknown,
    authentication: DocumentAuthentication | undefined,
    name: string,
  ): Promise<void> {
    const context = { store: 'storage' as const, orgId: binding.orgId, object: name };
    if (authentication === undefined) {
      if (!this.configured || this.acceptUnauthenticated) return;
      throw permanentFailure(
        FailureType.ChecksumMismatch,
        `${name} is not authenticated (written before backups were authenticated, or its authentication was removed); it is refused because a master key or BACKUP_AUTHENTICATION_SECRET is configured. To read backups written before authentication, set BACKUP_ACCEPT_UNAUTHENTICATED=true`,
        context,
      );
    }
    let key: AuthenticationKey | undefined;
    if (authentication.keyId.startsWith('sk_')) {
      if (authentication.keyId !== this.secretId)
        throw permanentFailure(
          FailureType.ChecksumMismatch,
          `${name} is authenticated under secret ${authentication.keyId}, but ${this.secretId === undefined ? 'no BACKUP_AUTHENTICATION_SECRET' : `secret ${this.secretId}`} is configured`,
          context,
        );
      key = this.signingKey(binding.orgId, undefined);
    } else {
      key = this.signingKey(binding.orgId, await this.keyStore.getDataKey(binding.orgId, authentication.keyId));
    }
    const expected = Buffer.from(key ? macOf(key, binding, document) : '', 'hex');
    const actual = Buffer.from(authentication.mac, 'hex');
    if (expected.length !== actual.length || !timingSafeEqual(expected, actual)) {
      throw permanentFailure(
        FailureType.ChecksumMismatch,
        `${name} fails authentication: it was altered, or belongs to another ${binding.purpose === 'sidecar' ? 'artifact or backup' : 'backup'}`,
        context,
      );
    }
  }
}
