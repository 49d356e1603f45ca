import type { Command, CommandOption } from './command';

/** Options every command accepts, before or after the command's name. */
export const GLOBAL_OPTIONS = [
  { name: 'json', kind: 'flag', description: 'machine-readable output on stdout (progress goes to stderr)' },
  {
    name: 'output',
    kind: 'value',
    short: 'o',
    placeholder: 'json|text',
    description: 'output format: -o json is --json (kubectl and Velero spell it so); text is the default',
  },
  {
    name: 'task-queue',
    kind: 'value',
    placeholder: '<q>',
    description: "the worker's task queue (default: TEMPORAL_TASK_QUEUE)",
  },
  { name: 'help', kind: 'flag', short: 'h', description: 'help for a command' },
  { name: 'version', kind: 'flag', description: "print eloquent-recovery's version and exit" },
] as const satisfies readonly CommandOption[];

/** The pseudo-command that prints the global help. */
export const HELP_COMMAND = 'help';

/** A command line that does not fit the command (exit code 2): names the option and the command, if one was given. */
export class CommandLineError extends Error {
  override readonly name = 'CommandLineError';
  constructor(
    message: string,
    /** The command whose help to show; undefined before the command's name (or for an unknown one). */
    readonly command: Command | undefined,
  ) {
    super(message);
  }
}

export interface ParsedCommandLine {
  /** The command named; undefined when none was, or for `help`. */
  command: Command | undefined;
  /** True when the first positional was `help`. */
  helpCommand: boolean;
  /** The global options: `--json` (or `-o json`), `--help`, `--version`, `--task-queue`. */
  json: boolean;
  help: boolean;
  version: boolean;
  taskQueue: string | undefined;
  /** The command's own option values, by name. */
  options: Record<string, string | boolean>;
  positionals: string[];
}

/**
 * Parses `argv` (without node and script): the first positional names the command; global options go
 * anywhere, a command's own options after its name. `--name value`, `--name=value`, `-h` and `--`
 * (what follows is positional) are understood; a repeated option keeps its last value.
 *
 * @throws CommandLineError for an unknown command, an unknown option (naming it and the command), a
 *   value option without its value or a flag given a value.
 */
export function parseCommandLine(argv: readonly string[], commands: readonly Command[]): ParsedCommandLine {
  let command: Command | undefined;
  let helpCommand = false;
  const globals: Record<string, string | boolean> = {};
  const options: Record<string, string | boolean> = {};
  const positionals: string[] = [];
  let named = false;
  const positional = (token: string) => {
    if (named) {
      positionals.push(token);
      return;
    }
    named = true;
    if (token === HELP_COMMAND) {
      helpCommand = true;
      return;
    }
    command = commands.find((c) => c.name === token);
    if (command === undefined) throw new CommandLineError(`unknown command ${JSON.stringify(token)}`, undefined);
  };
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i] ?? '';
    if (token === '--') {
      argv.slice(i + 1).forEach(positional);
      break;
    }
    if (token.length < 2 || !token.startsWith('-')) {
      positional(token);
      continue;
    }
    const long = token.startsWith('--');
    const equals = long ? token.indexOf('=') : -1;
    const given = long ? token.slice(2, equals < 0 ? undefined : equals) : token.slice(1);
    const inline = equals < 0 ? undefined : token.slice(equals + 1);
    const where = command ? ` for command ${command.name}` : '';
    const globalOption = GLOBAL_OPTIONS.find((o) => (long ? o.name === given : 'short' in o && o.short === given));
    const option = globalOption ?? (long ? command?.options.find((o) => o.name === given) : undefined);
    if (option === undefined) {
      const hint = named ? '' : " (a command's options go after its name)";
      throw new CommandLineError(`unknown option ${token.split('=')[0]}${where}${hint}`, command);
    }
    const values = globalOption ? globals : options;
    if (option.kind === 'flag') {
      if (inline !== undefined)
        throw new CommandLineError(
          `option --${option.name}${where} is a flag and takes no value; got ${JSON.stringify(token)}`,
          command,
        );
      values[option.name] = true;
      continue;
    }
    let value = inline;
    if (value === undefined) {
      const next = argv[i + 1];
      // Like node's parseArgs: a value that starts with a dash is taken only as `--name=-value`.
      if (next === undefined || (next.length > 1 && next.startsWith('-'))) {
        throw new CommandLineError(
          `option --${option.name}${where} needs a value: --${option.name} ${option.placeholder}`,
          command,
        );
      }
      value = next;
      i++;
    }
    values[option.name] = value;
  }
  const taskQueue = globals['task-queue'];
  const output = globals.output;
  if (output !== undefined && output !== 'json' && output !== 'text')
    throw new CommandLineError(`option -o/--output expects json or text; got ${JSON.stringify(output)}`, command);
  return {
    command,
    helpCommand,
    json: globals.json === true || output === 'json',
    help: globals.help === true,
    version: globals.version === true,
    taskQueue: typeof taskQueue === 'string' ? taskQueue : undefined,
    options,
    positionals,
  };
}

/** The required options of `command` that `options` lacks (or has empty), as `--name`. */
export function missingRequiredOptions(command: Command, options: ParsedCommandLine['options']): string[] {
  return command.options.filter((o) => o.kind === 'value' && o.required && !options[o.name]).map((o) => `--${o.name}`);
}
