import type { RecoveryClient } from '../client';
import type { ExitCode } from './exit-codes';

/** Where the CLI writes; tests and embedding callers pass their own. */
export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** True when a person can answer a confirmation question. */
  isTty: boolean;
  /** Asks a question on the terminal and returns the answer. */
  ask: (question: string) => Promise<string>;
  env: NodeJS.ProcessEnv;
}

/** An on/off option: `--verify`. */
export interface FlagOption {
  /** Without the dashes: `verify` is given as `--verify`. */
  readonly name: string;
  readonly kind: 'flag';
  /** A one-letter alias, given as `-h`. */
  readonly short?: string;
  readonly description: string;
}

/** An option that takes a value: `--grace 7d` or `--grace=7d`. */
export interface ValueOption {
  /** Without the dashes: `grace` is given as `--grace`. */
  readonly name: string;
  readonly kind: 'value';
  /** A one-letter alias, given as `-o json`. */
  readonly short?: string;
  /** Shown after the name in help: `<text>`, or an example such as `7d`. */
  readonly placeholder: string;
  readonly description: string;
  /** Shown without brackets in the usage line; the command refuses to run without it. */
  readonly required?: boolean;
}

export type CommandOption = FlagOption | ValueOption;

/** The parsed values of `options`, by name: a string for a value option, `true` for a flag given. */
export type OptionValues<O extends readonly CommandOption[]> = {
  readonly [K in O[number] as K['name']]?: K extends ValueOption ? string : boolean;
};

/** What every command runs with: the terminal, the output mode and a lazily connected client. */
export interface CommandContext {
  io: CliIo;
  /** `--json`: one JSON document on stdout, progress on stderr. */
  json: boolean;
  /** Prints the result: `human` as text, or `data` as JSON under `--json`. */
  print: (human: string, data: unknown) => void;
  /** Prints a progress line: on stdout, or on stderr under `--json`. */
  progress: (line: string) => void;
  /** Connects on first use (to the `--task-queue` given), so usage errors need no server. */
  connect: () => Promise<RecoveryClient>;
}

/** A command's positional arguments (after its name) and its own option values. */
export interface CommandArguments<O extends readonly CommandOption[]> {
  positionals: string[];
  options: OptionValues<O>;
}

/** One command of `eloquent-recovery`: help and option parsing are generated from these fields. */
export interface Command<O extends readonly CommandOption[] = readonly CommandOption[]> {
  /** What the operator types: `cancel-delete`. */
  readonly name: string;
  /** The positional part of the usage line, after the name: `<org>`, `[<org>]`, or `` for none. */
  readonly usage: string;
  /** One line for the command list of the global help. */
  readonly summary: string;
  /** A paragraph for the command's own help, where the summary does not say enough. */
  readonly description?: string;
  /** The options this command accepts besides the global ones; any other is refused. */
  readonly options: O;
  // Method syntax on purpose: every command's `run` fits the one `Command` type of the command list.
  run(context: CommandContext, args: CommandArguments<O>): Promise<ExitCode>;
}

/** Declares a command; its `run` sees its options typed by name. */
export function defineCommand<const O extends readonly CommandOption[]>(command: Command<O>): Command<O> {
  return command;
}
