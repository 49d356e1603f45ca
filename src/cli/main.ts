#!/usr/bin/env node
import { createInterface } from 'node:readline/promises';
import { connectRecoveryClient, type RecoveryClient } from '../client';
import { loadConfig } from '../config';
import type { CliIo, CommandContext } from './command';
import { CommandLineError, missingRequiredOptions, parseCommandLine, type ParsedCommandLine } from './command-line';
import { COMMANDS } from './commands';
import { ExitCode, exitCodeOf, UsageError } from './exit-codes';
import { commandHelp, globalHelp } from './help';
import PACKAGE from '../../package.json';

/** Runs the CLI with `argv` (without node and script); returns the exit code. */
export async function runCli(argv: string[], io: CliIo): Promise<ExitCode> {
  let line: ParsedCommandLine;
  try {
    line = parseCommandLine(argv, COMMANDS);
  } catch (err) {
    if (!(err instanceof CommandLineError)) throw err;
    io.stderr(`${err.message}\n\n${err.command ? commandHelp(err.command) : globalHelp(COMMANDS)}`);
    return ExitCode.Usage;
  }
  const { command, json } = line;
  if (line.version) {
    io.stdout(
      json
        ? `${JSON.stringify({ name: PACKAGE.name, version: PACKAGE.version })}\n`
        : `${PACKAGE.name} ${PACKAGE.version}\n`,
    );
    return ExitCode.Ok;
  }
  if (command === undefined) {
    io.stdout(globalHelp(COMMANDS));
    return line.help || line.helpCommand ? ExitCode.Ok : ExitCode.Usage;
  }
  const help = commandHelp(command);
  if (line.help) {
    io.stdout(help);
    return ExitCode.Ok;
  }
  let client: RecoveryClient | undefined;
  const ctx: CommandContext = {
    io,
    json,
    print: (human, data) => io.stdout(json ? `${JSON.stringify(data, null, 2)}\n` : `${human}\n`),
    progress: (text) => (json ? io.stderr(`${text}\n`) : io.stdout(`${text}\n`)),
    connect: async () => {
      client ??= await connectRecoveryClient({
        config: loadConfig(io.env),
        ...(line.taskQueue ? { taskQueue: line.taskQueue } : {}),
      });
      return client;
    },
  };
  try {
    const missing = missingRequiredOptions(command, line.options);
    if (missing.length > 0) throw new UsageError(`${command.name} needs ${missing.join(' and ')}`);
    return await command.run(ctx, { positionals: line.positionals, options: line.options });
  } catch (err) {
    const code = exitCodeOf(err);
    const message = failureMessage(err);
    if (json) io.stdout(`${JSON.stringify({ ok: false, exitCode: code, error: message }, null, 2)}\n`);
    io.stderr(`error: ${message}\n`);
    if (code === ExitCode.Usage && err instanceof UsageError) io.stderr(`\n${help}`);
    return code;
  } finally {
    await client?.close();
  }
}

/** Every message of the cause chain: a workflow failure's reason sits a few causes deep. */
function failureMessage(err: unknown): string {
  const messages: string[] = [];
  let current: unknown = err;
  for (let depth = 0; depth < 8 && current instanceof Error; depth++) {
    if (current.message && !messages.includes(current.message)) messages.push(current.message);
    current = current.cause;
  }
  return messages.join(': ') || String(err);
}

if (require.main === module) {
  const io: CliIo = {
    stdout: (t) => process.stdout.write(t),
    stderr: (t) => process.stderr.write(t),
    isTty: Boolean(process.stdin.isTTY && process.stdout.isTTY),
    ask: async (question) => {
      const rl = createInterface({ input: process.stdin, output: process.stdout });
      try {
        return await rl.question(question);
      } finally {
        rl.close();
      }
    },
    env: process.env,
  };
  runCli(process.argv.slice(2), io).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(ExitCode.OperationFailed);
    },
  );
}
