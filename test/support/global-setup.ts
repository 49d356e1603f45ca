import { mkdir, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { REPO_ROOT, WORKFLOW_BUNDLE_PATH } from './paths';
import { ERRORS_ONLY_BUNDLE_LOGGER } from './bundle-logger';

/** Bundles the workflow code once for the whole run; each test file's worker loads the file. */
export default async function globalSetup(): Promise<void> {
  const { code } = await bundleWorkflowCode({
    workflowsPath: path.join(REPO_ROOT, 'src', 'workflows', 'index.ts'),
    logger: ERRORS_ONLY_BUNDLE_LOGGER,
  });
  await mkdir(path.dirname(WORKFLOW_BUNDLE_PATH), { recursive: true });
  await writeFile(WORKFLOW_BUNDLE_PATH, code);
}
