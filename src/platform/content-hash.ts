import { createHash } from 'node:crypto';

/** 2^64: content hashes are sums of per-row hashes modulo this. */
export const HASH_MODULUS = 1n << 64n;

/** A hash sum (decimal text or bigint) as 16 hex digits. */
export function formatHash(sum: string | bigint): string {
  const value = (typeof sum === 'bigint' ? sum : BigInt(sum)) % HASH_MODULUS;
  return value.toString(16).padStart(16, '0');
}

/**
 * First 60 bits of SHA-256 of the parts (each followed by a NUL, so part boundaries count), as a
 * bigint: one row's share of an order-independent sum (60 bits, like the PostgreSQL side).
 */
export function hash60(...parts: Array<string | Buffer>): bigint {
  const h = createHash('sha256');
  for (const part of parts) {
    h.update(part);
    h.update('\u0000');
  }
  return BigInt(`0x${h.digest('hex').slice(0, 15)}`);
}
