import { decideRetention, type RetentionCandidate } from '../src/storage/retention';

const backup = (backupId: string, startedAt: string, extra: Partial<RetentionCandidate> = {}): RetentionCandidate => ({
  backupId,
  startedAt,
  complete: true,
  held: false,
  ...extra,
});

describe('retention policy', () => {
  const now = new Date('2026-11-30T12:00:00Z');
  // Two backups a day for 30 days.
  const history = Array.from({ length: 60 }, (_, i) => {
    const t = new Date(now.getTime() - (i + 1) * 12 * 3_600_000);
    return backup(`b${String(i).padStart(2, '0')}`, t.toISOString());
  });

  it('keeps the last N, one per day for D days and one per week for W weeks, and removes the rest', () => {
    const decision = decideRetention(history, { keepLast: 3, keepDaily: 5, keepWeekly: 3 }, now);
    const kept = decision.keep.map((k) => k.backupId).sort();
    // last 3: b00 b01 b02; daily (newest of each day): b00 b02 b04 b06 b08 (b01 shares b00's day or the next)
    expect(kept).toEqual(expect.arrayContaining(['b00', 'b01', 'b02']));
    expect(decision.keep.length).toBeLessThan(3 + 5 + 3);
    expect(decision.remove.length).toBe(60 - decision.keep.length);
    expect(decision.remove).toContain('b59');
    expect(new Set([...decision.remove, ...kept]).size).toBe(60);
  });

  it('never removes the newest complete backup, even with a policy that keeps nothing', () => {
    const decision = decideRetention(history, { keepLast: 0, keepDaily: 0, keepWeekly: 0 }, now);
    expect(decision.keep).toEqual([{ backupId: 'b00', reasons: ['newest complete backup'] }]);
  });

  it('never removes a backup held by an unfinished deletion', () => {
    const held = history.map((b) => (b.backupId === 'b40' ? { ...b, held: true } : b));
    const decision = decideRetention(held, { keepLast: 1, keepDaily: 0, keepWeekly: 0 }, now);
    expect(decision.remove).not.toContain('b40');
    expect(decision.keep.find((k) => k.backupId === 'b40')?.reasons).toEqual(['held by an unfinished operation']);
  });

  it('keeps a young incomplete backup (it may be running) and removes an old one', () => {
    const young = backup('young', new Date(now.getTime() - 3_600_000).toISOString(), { complete: false });
    const old = backup('old', new Date(now.getTime() - 48 * 3_600_000).toISOString(), { complete: false });
    const decision = decideRetention(
      [young, old, ...history.slice(0, 2)],
      { keepLast: 5, keepDaily: 0, keepWeekly: 0 },
      now,
    );
    expect(decision.remove).toEqual(['old']);
  });
});
