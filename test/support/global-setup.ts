import { mkdir, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { REPO_ROOT, WORKFLOW_BUNDLE_PATH } from './paths';

/** Bundles the workflow code once for the whole run; each test file's worker loads the file. */
export default async function globalSetup(): Promise<void> {
  const { code } = await bundleWorkflowCode({
    workflowsPath: path.join(REPO_ROOT, 'src', 'workflows', 'index.ts'),
    logger: {
      trace() {},
      debug() {},
      info() {},
      warn() {},
      error: (m: string) => process.stderr.write(`${m}\n`),
      log() {},
    },
  });
  await mkdir(path.dirname(WORKFLOW_BUNDLE_PATH), { recursive: true });
  await writeFile(WORKFLOW_BUNDLE_PATH, code);
}
