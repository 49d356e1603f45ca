import type { ClickHouseClient } from '@clickhouse/client';
import { z } from 'zod';
import { quoteClickHouseString } from './quoting';

/**
 * Settings a restore's INSERTs run with, so rows arrive exactly as they were exported:
 * - `insert_deduplicate = 0`: a Replicated* table would drop a block whose checksum it has seen
 *   (two identical inserts the source kept, or a block of a scratch copy of that same backup);
 * - `optimize_on_insert = 0` (ClickHouse 20.12 and later, on by default): a Replacing, Collapsing,
 *   Summing or Aggregating table would merge the rows of each inserted block, so unmerged duplicates
 *   the source still holds would vanish and plain counts differ.
 */
const INSERT_SETTINGS = { insert_deduplicate: 0, optimize_on_insert: 0 } as const;

/**
 * Settings a restore's CREATE statements run with: types the source server accepted must be
 * accepted again. ClickHouse 18.16 refuses `LowCardinality` without
 * `allow_experimental_low_cardinality_type`; modern servers refuse `LowCardinality(UInt8)` and the
 * like without `allow_suspicious_low_cardinality_types`, and `Map` before 21.x without `allow_experimental_map_type`.
 */
const CREATE_SETTINGS = {
  allow_experimental_low_cardinality_type: 1,
  allow_suspicious_low_cardinality_types: 1,
  allow_experimental_map_type: 1,
} as const;

type SettingName = keyof typeof INSERT_SETTINGS | keyof typeof CREATE_SETTINGS;
type Settings = Partial<Record<SettingName, 0 | 1>>;

/** What a restore sets on its statements, limited to the settings the server has (an unknown one fails the query). */
export interface ClickHouseRestoreSettings {
  create: Settings;
  insert: Settings;
}

/** The restore settings among `available` (names from `system.settings`). */
export function restoreSettingsOf(available: ReadonlySet<string>): ClickHouseRestoreSettings {
  const pick = (settings: Readonly<Settings>): Settings =>
    Object.fromEntries(Object.entries(settings).filter(([name]) => available.has(name)));
  return { create: pick(CREATE_SETTINGS), insert: pick(INSERT_SETTINGS) };
}

const nameRow = z.object({ name: z.string() });

/** Reads which restore settings the server has, from `system.settings` (one query; call once per activity). */
export async function readClickHouseRestoreSettings(client: ClickHouseClient): Promise<ClickHouseRestoreSettings> {
  const names = [...Object.keys(INSERT_SETTINGS), ...Object.keys(CREATE_SETTINGS)]
    .map(quoteClickHouseString)
    .join(', ');
  const result = await client.query({
    query: `SELECT name FROM system.settings WHERE name IN (${names})`,
    format: 'JSONEachRow',
  });
  return restoreSettingsOf(
    new Set(
      z
        .array(nameRow)
        .parse(await result.json<unknown>())
        .map((r) => r.name),
    ),
  );
}
