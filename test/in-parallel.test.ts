import { setTimeout as sleep } from 'node:timers/promises';
import { mapInParallel } from '../src/activities/support/in-parallel';

describe('mapInParallel', () => {
  it('keeps the items’ order and never runs more than the limit at once', async () => {
    let running = 0;
    let most = 0;
    const results = await mapInParallel([30, 5, 20, 1, 10, 2], 3, async (ms, i) => {
      most = Math.max(most, ++running);
      await sleep(ms);
      running--;
      return `${i}:${ms}`;
    });
    expect(results).toEqual(['0:30', '1:5', '2:20', '3:1', '4:10', '5:2']);
    expect(most).toBe(3);
  });

  it('after a failure starts nothing new, waits for the running items, then throws the first failure', async () => {
    const started: number[] = [];
    const finished: number[] = [];
    const run = mapInParallel([0, 1, 2, 3, 4, 5], 2, async (i) => {
      started.push(i);
      if (i === 1) throw new Error('item 1 failed');
      await sleep(i === 0 ? 40 : 5);
      finished.push(i);
      return i;
    });
    await expect(run).rejects.toThrow('item 1 failed');
    // Item 0 was running when item 1 failed: it finished before the failure was thrown.
    expect(finished).toContain(0);
    expect(started.length).toBeLessThan(6);
    expect(await mapInParallel([], 3, async () => 1)).toEqual([]);
  });
});
