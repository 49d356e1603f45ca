import { readdir, readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { historyFromJSON } from './support/history-json';
import { DeterminismViolationError } from '@temporalio/workflow';
import { Worker } from '@temporalio/worker';
import { z } from 'zod';
import { REPO_ROOT, WORKFLOW_BUNDLE_PATH } from './support/paths';

/**
 * Replays the histories recorded by scripts/record-histories.ts against today's workflow code: a
 * change that would make a running execution take a different path (a new activity, a reordered
 * timer, a renamed signal) fails here instead of in production. No server needed.
 */
const HISTORIES_DIR = path.join(REPO_ROOT, 'test', 'histories');

describe('recorded workflow histories', () => {
  it('every recorded history replays on the current workflow code without a nondeterminism error', async () => {
    // Workflows derive child ids from their own (and deleteOrganization checks its id): replay under the recorded id.
    const workflowIds = z
      .record(z.string(), z.string())
      .parse(JSON.parse(await readFile(path.join(HISTORIES_DIR, 'workflow-ids.json'), 'utf8')));
    const files = (await readdir(HISTORIES_DIR)).filter((f) => f.endsWith('.json') && f !== 'workflow-ids.json').sort();
    expect(files.length).toBeGreaterThan(0);
    expect(Object.keys(workflowIds).sort()).toEqual(files);
    const histories = await Promise.all(
      files.map(async (file) => ({
        workflowId: workflowIds[file] ?? file,
        history: historyFromJSON(JSON.parse(await readFile(path.join(HISTORIES_DIR, file), 'utf8'))),
      })),
    );
    const failures: string[] = [];
    let replayed = 0;
    // Histories are replayed one after another, in the order given: the n-th result is the n-th file.
    for await (const result of Worker.runReplayHistories(
      { workflowBundle: { codePath: WORKFLOW_BUNDLE_PATH }, replayName: 'replay-test' },
      histories,
    )) {
      const file = files[replayed++];
      if (result.error) {
        const kind = result.error instanceof DeterminismViolationError ? 'nondeterminism' : 'replay failure';
        failures.push(`${file}: ${kind}: ${result.error.message}`);
      }
    }
    expect(failures).toEqual([]);
    expect(replayed).toBe(files.length);
  }, 300_000);
});
