import type { CliIo } from '../../src/cli/command';

/** CLI input/output captured in strings, as a terminal (`isTty`) or as a pipe. */
export function captureIo(env: NodeJS.ProcessEnv = process.env, isTty = false): CliIo & { out: string; err: string } {
  const io = {
    out: '',
    err: '',
    stdout: (t: string) => {
      io.out += t;
    },
    stderr: (t: string) => {
      io.err += t;
    },
    isTty,
    ask: async () => '',
    env,
  };
  return io;
}
