/**
 * The numeric ClickHouse error code: `code` on modern servers' errors, the "Code: 60" prefix on
 * ClickHouse 18's. ClickHouse 18 prefixes errors thrown by its HTTP library with "Poco::Exception."
 * ("Poco::Exception. Code: 1000, … Too large string size." for a Native body it cannot parse); modern
 * servers answer the same with code 1000 (POCO_EXCEPTION) or 131 (TOO_LARGE_STRING_SIZE). Without
 * the prefix read, such a refusal carried no code and was retried twenty times.
 */
export function clickHouseErrorCode(err: unknown): string | undefined {
  if (!(err instanceof Error)) return undefined;
  const declared = (err as { code?: unknown }).code;
  return typeof declared === 'string' ? declared : /^(?:Poco::Exception\. )?Code: (\d+)/.exec(err.message)?.[1];
}
