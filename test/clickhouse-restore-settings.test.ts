import { dropDatabaseStatement } from '../src/activities/clickhouse/restore';
import { restoreSettingsOf } from '../src/platform/clickhouse-settings';

describe('ClickHouse restore settings', () => {
  it('on ClickHouse 18.16 a restore inserts without deduplication and creates LowCardinality columns, and sets no optimize_on_insert, which the server lacks', () => {
    const settings = restoreSettingsOf(
      new Set(['insert_deduplicate', 'allow_experimental_low_cardinality_type', 'max_threads']),
    );
    expect(settings).toEqual({
      create: { allow_experimental_low_cardinality_type: 1 },
      insert: { insert_deduplicate: 0 },
    });
  });

  it('on a modern server a restore also turns optimize_on_insert off and allows suspicious LowCardinality types', () => {
    const settings = restoreSettingsOf(
      new Set([
        'insert_deduplicate',
        'optimize_on_insert',
        'allow_suspicious_low_cardinality_types',
        'allow_experimental_map_type',
      ]),
    );
    expect(settings.insert).toEqual({ insert_deduplicate: 0, optimize_on_insert: 0 });
    expect(settings.create).toEqual({ allow_suspicious_low_cardinality_types: 1, allow_experimental_map_type: 1 });
  });

  it('an Atomic or Replicated database is dropped with SYNC, an Ordinary one (ClickHouse 18) without', () => {
    expect(dropDatabaseStatement('org_a', 'Ordinary')).toBe('DROP DATABASE IF EXISTS `org_a`');
    expect(dropDatabaseStatement('org_a', 'Atomic')).toBe('DROP DATABASE IF EXISTS `org_a` SYNC');
    expect(dropDatabaseStatement('org a', 'Replicated')).toBe('DROP DATABASE IF EXISTS `org a` SYNC');
  });
});
