import { FailureType, permanentFailure } from '../errors';

/** PostgreSQL truncates longer identifiers silently; a truncated name would address another object. */
const PG_MAX_IDENTIFIER_BYTES = 63;

/**
 * Quotes a PostgreSQL identifier (schema, table, column) for SQL text, doubling embedded quotes.
 * @throws a non-retryable `InvalidInput` failure for an empty name, a NUL byte, or a name longer
 *   than 63 bytes (which PostgreSQL would truncate).
 */
export function quotePgIdent(name: string): string {
  if (name.length === 0 || name.includes('\0') || Buffer.byteLength(name, 'utf8') > PG_MAX_IDENTIFIER_BYTES) {
    throw permanentFailure(
      FailureType.InvalidInput,
      `invalid PostgreSQL identifier ${JSON.stringify(name.slice(0, 80))}: expected 1-${PG_MAX_IDENTIFIER_BYTES} bytes without NUL`,
    );
  }
  return `"${name.replace(/"/g, '""')}"`;
}

/** `schema.table`, each part quoted. */
export function quotePgQualified(schema: string, table: string): string {
  return `${quotePgIdent(schema)}.${quotePgIdent(table)}`;
}

/**
 * Quotes a PostgreSQL string literal. Only for statements that take no parameters (DDL such as
 * `COMMENT ON`, `SET`); everywhere else values go as `$n` parameters. Uses the `E''` form so the
 * result is right whatever `standard_conforming_strings` says.
 */
export function quotePgLiteral(value: string): string {
  if (value.includes('\0'))
    throw permanentFailure(FailureType.InvalidInput, 'a PostgreSQL string literal cannot contain a NUL byte');
  return `E'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

/** Backslash escapes ClickHouse reads inside back-quotes and single quotes alike (18.16 and modern). */
function escapeClickHouseQuoted(value: string, quote: '`' | "'"): string {
  return value
    .replace(/\\/g, '\\\\')
    .replace(quote === '`' ? /`/g : /'/g, `\\${quote}`)
    .replace(/\0/g, '\\0')
    .replace(/\n/g, '\\n')
    .replace(/\r/g, '\\r')
    .replace(/\t/g, '\\t');
}

/**
 * Quotes a ClickHouse identifier (database, table, column) with back-quotes, escaping back-quotes,
 * backslashes and control characters, so any name the server allows — `.inner.acc_mv`, `the key`,
 * `odd/na.me ü` — addresses exactly that object.
 * @throws a non-retryable `InvalidInput` failure for an empty name, which no object has.
 */
export function quoteClickHouseIdent(name: string): string {
  if (name.length === 0)
    throw permanentFailure(FailureType.InvalidInput, 'invalid ClickHouse identifier "": a name cannot be empty');
  return `\`${escapeClickHouseQuoted(name, '`')}\``;
}

/** `database.table`, each part quoted. */
export function quoteClickHouseQualified(database: string, table: string): string {
  return `${quoteClickHouseIdent(database)}.${quoteClickHouseIdent(table)}`;
}

/**
 * Quotes a ClickHouse string literal. ClickHouse 18 has no server-side query parameters, so values
 * must be inlined; backslash and single quote are escaped, NUL and line breaks spelled as escapes.
 */
export function quoteClickHouseString(value: string): string {
  return `'${escapeClickHouseQuoted(value, "'")}'`;
}
