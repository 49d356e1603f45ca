import type { CommandContext } from './command';
import { UsageError } from './exit-codes';

/** The single positional argument, named `what` in the error when it is missing. */
export function one(args: string[], what: string): string {
  const [value, ...rest] = args;
  if (value === undefined) throw new UsageError(`missing ${what}`);
  noArguments(rest);
  return value;
}

/** Refuses positional arguments for a command that takes none. */
export function noArguments(args: string[]): void {
  if (args.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(args[0])}`);
}

/** `--to-revision 3` as a revision number; undefined when the option is absent. */
export function revisionNumber(value: string | undefined, option: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^[1-9]\d*$/.test(value))
    throw new UsageError(`${option} expects a revision number, got ${JSON.stringify(value)}`);
  return Number(value);
}

/** `--by`, for every command whose request is recorded with who asked. */
export const BY_OPTION = {
  name: 'by',
  kind: 'value',
  placeholder: '<name>',
  description: 'who asks, recorded with the request (default: $USER)',
} as const;

/** Who asks, for the audit trail: `--by`, else the login name. */
export function operatorName(ctx: CommandContext, by: string | undefined): string {
  return by ?? ctx.io.env.USER ?? 'eloquent-recovery CLI';
}
