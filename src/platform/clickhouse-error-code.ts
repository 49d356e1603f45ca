/** The numeric ClickHouse error code: `code` on modern servers' errors, the "Code: 60" prefix on ClickHouse 18's. */
export function clickHouseErrorCode(err: unknown): string | undefined {
  if (!(err instanceof Error)) return undefined;
  const declared = (err as { code?: unknown }).code;
  return typeof declared === 'string' ? declared : /^Code: (\d+)/.exec(err.message)?.[1];
}
