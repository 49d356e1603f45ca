import type { Command, CommandOption } from './command';
import { GLOBAL_OPTIONS } from './command-line';

const PROGRAM = 'eloquent-recovery';

/** `--grace 7d` or `-h, --help`, as an option is written in help. */
function optionSyntax(option: CommandOption): string {
  const long = option.kind === 'value' ? `--${option.name} ${option.placeholder}` : `--${option.name}`;
  return option.short ? `-${option.short}, ${long}` : long;
}

/** The command with its positionals and every option it accepts: `delete <org> [--grace 7d] …`. */
export function usageLine(command: Command): string {
  const options = command.options.map((o) => {
    const syntax = optionSyntax(o);
    return o.kind === 'value' && o.required ? syntax : `[${syntax}]`;
  });
  return [command.name, command.usage, ...options].filter((part) => part !== '').join(' ');
}

/** One option a line, descriptions in a column `width` characters in. */
function optionTable(options: readonly CommandOption[], width = columnWidth(options)): string {
  return options.map((o) => `  ${optionSyntax(o).padEnd(width)}${o.description}\n`).join('');
}

function columnWidth(options: readonly CommandOption[]): number {
  return Math.max(...options.map((o) => optionSyntax(o).length + 2));
}

/** The help of `eloquent-recovery` itself: every command with its options, then the global options. */
export function globalHelp(commands: readonly Command[]): string {
  const list = commands.map((c) => `  ${usageLine(c)}\n      ${c.summary}\n`).join('');
  return `${PROGRAM} — operate backups, restores and deletions of organizations

Usage: ${PROGRAM} <command> [options]

Commands:
${list}
Global options:
${optionTable(GLOBAL_OPTIONS)}
Exit codes: 0 ok · 1 operation failed · 2 usage or invalid input · 3 Temporal or a store unavailable ·
            4 refused (conflict, not found, confirmation declined)
`;
}

/** The help of one command: its usage line, what it does, its options and the global ones. */
export function commandHelp(command: Command): string {
  const width = columnWidth([...command.options, ...GLOBAL_OPTIONS]);
  const options = command.options.length > 0 ? `\nOptions:\n${optionTable(command.options, width)}` : '';
  return `Usage: ${PROGRAM} ${usageLine(command)}

${command.description ?? `${command.summary[0]?.toUpperCase() ?? ''}${command.summary.slice(1)}.`}
${options}
Global options:
${optionTable(GLOBAL_OPTIONS, width)}`;
}
