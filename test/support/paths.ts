import * as path from 'node:path';

export const REPO_ROOT = path.resolve(__dirname, '..', '..');
/** Workflow code bundled once per test run by global-setup.ts, shared by every test worker. */
export const WORKFLOW_BUNDLE_PATH = path.join(REPO_ROOT, '.data', 'test', 'workflow-bundle.js');
