// Writing recorded workflow histories into test/histories/, shared by scripts/record-histories.ts
// (scenarios on the real stack) and test/deletion-saga.test.ts (mocked activities, RECORD_HISTORIES=1).
import { readFile, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import type { Client } from '@temporalio/client';
import { z } from 'zod';
import { historyToJSON } from './history-json';
import { REPO_ROOT } from './paths';

export const HISTORIES_DIR = path.join(REPO_ROOT, 'test', 'histories');
/** File name → workflow id: replay needs the id (child ids derive from it; deleteOrganization checks its own). */
export const WORKFLOW_IDS_FILE = path.join(HISTORIES_DIR, 'workflow-ids.json');

export async function readWorkflowIds(): Promise<Record<string, string>> {
  return readFile(WORKFLOW_IDS_FILE, 'utf8')
    .then((text) => z.record(z.string(), z.string()).parse(JSON.parse(text)))
    .catch(() => ({}));
}

export async function writeWorkflowIds(workflowIds: Record<string, string>): Promise<void> {
  const sorted = Object.fromEntries(Object.entries(workflowIds).sort(([a], [b]) => a.localeCompare(b)));
  await writeFile(WORKFLOW_IDS_FILE, `${JSON.stringify(sorted, null, 2)}\n`);
}

/** Every run of `workflowId` (a continue-as-new chain), oldest first. */
async function runsOf(client: Client, workflowId: string): Promise<Array<{ runId: string; type: string }>> {
  const runs: Array<{ runId: string; type: string; startTime: number }> = [];
  for await (const run of client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) {
    runs.push({ runId: run.runId, type: run.type, startTime: run.startTime.getTime() });
  }
  return runs.sort((a, b) => a.startTime - b.startTime);
}

/**
 * Writes the histories of `rootIds` and of every child they started, as
 * `<scenario>.<workflow type>[.<n>].json`, noting each file's workflow id in `workflowIds`; returns the files written.
 */
export async function recordTree(
  client: Client,
  scenario: string,
  rootIds: string[],
  workflowIds: Record<string, string>,
): Promise<string[]> {
  const written: string[] = [];
  const perType = new Map<string, number>();
  const queue = [...rootIds];
  const seen = new Set<string>();
  while (queue.length > 0) {
    const workflowId = queue.shift() ?? '';
    if (seen.has(workflowId)) continue;
    seen.add(workflowId);
    // Visibility is eventually consistent: wait until the runs show up.
    let runs = await runsOf(client, workflowId);
    for (let i = 0; i < 50 && runs.length === 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      runs = await runsOf(client, workflowId);
    }
    for (const run of runs) {
      const history = await client.workflow.getHandle(workflowId, run.runId).fetchHistory();
      for (const event of history.events ?? []) {
        const child = event.childWorkflowExecutionStartedEventAttributes?.workflowExecution?.workflowId;
        if (child) queue.push(child);
      }
      const n = perType.get(run.type) ?? 0;
      perType.set(run.type, n + 1);
      const file = path.join(HISTORIES_DIR, `${scenario}.${run.type}${n > 0 ? `.${n + 1}` : ''}.json`);
      await writeFile(file, `${historyToJSON(history)}\n`);
      written.push(path.basename(file));
      workflowIds[path.basename(file)] = workflowId;
    }
  }
  return written;
}
