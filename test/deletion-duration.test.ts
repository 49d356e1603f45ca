import { parseDurationMs } from '../src/contracts/deletion';

describe('parseDurationMs (deletion grace period, retention, storeDownAfter)', () => {
  it('reads days, hours, minutes, seconds and milliseconds, alone or combined', () => {
    expect(parseDurationMs('7d', 'gracePeriod')).toBe(7 * 86_400_000);
    expect(parseDurationMs('10s', 'gracePeriod')).toBe(10_000);
    expect(parseDurationMs('0s', 'gracePeriod')).toBe(0);
    expect(parseDurationMs('1h30m', 'gracePeriod')).toBe(5_400_000);
    expect(parseDurationMs('500ms', 'storeDownAfter')).toBe(500);
    expect(parseDurationMs('2w', 'backupRetention')).toBe(14 * 86_400_000);
  });

  it('refuses anything else, naming the field', () => {
    for (const bad of ['', '7', 'soon', '-1s', '1.5h', '7 days', 7]) {
      expect(() => parseDurationMs(bad, 'gracePeriod')).toThrow(/^gracePeriod: expected a duration such as "7d"/);
    }
  });
});
