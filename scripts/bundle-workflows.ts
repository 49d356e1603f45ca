/**
 * `npm run bundle`: bundles the workflow code once, ahead of time, into `dist/workflow-bundle.js`
 * (or the path given as the first argument). A worker finds that file by itself
 * ({@link DEFAULT_WORKFLOW_BUNDLE_PATH}, or `WORKFLOW_BUNDLE_PATH`) and starts without webpack —
 * seconds instead of tens of seconds, and no webpack at run time in the image.
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { DEFAULT_WORKFLOW_BUNDLE_PATH } from '../src/worker';

async function main(): Promise<void> {
  const target = path.resolve(process.argv[2] ?? DEFAULT_WORKFLOW_BUNDLE_PATH);
  const started = Date.now();
  process.stderr.write(`bundling src/workflows into ${target}\n`);
  const { code } = await bundleWorkflowCode({
    workflowsPath: require.resolve('../src/workflows'),
    logger: {
      trace() {},
      debug() {},
      info() {},
      warn: (message: string) => process.stderr.write(`${message}\n`),
      error: (message: string) => process.stderr.write(`${message}\n`),
      log() {},
    },
  });
  await mkdir(path.dirname(target), { recursive: true });
  // Renamed into place: a worker starting meanwhile never loads half a bundle.
  await writeFile(`${target}.tmp`, code);
  await rename(`${target}.tmp`, target);
  process.stderr.write(`wrote ${code.length} bytes in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
