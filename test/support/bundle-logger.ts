/** A logger for `bundleWorkflowCode` that keeps only errors: webpack's progress is noise in test output. */
export const ERRORS_ONLY_BUNDLE_LOGGER = {
  trace() {},
  debug() {},
  info() {},
  warn() {},
  error: (message: string) => process.stderr.write(`${message}\n`),
  log() {},
};
