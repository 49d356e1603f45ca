import type { CommandContext } from './command';
import { RefusedError, UsageError } from './exit-codes';

/** Asks the operator to type `expected` on a terminal; refuses without a terminal. */
export async function confirm(
  ctx: CommandContext,
  given: string | undefined,
  expected: string,
  action: string,
): Promise<void> {
  if (given !== undefined) {
    if (given !== expected)
      throw new UsageError(`--confirm must repeat ${JSON.stringify(expected)} exactly; got ${JSON.stringify(given)}`);
    return;
  }
  if (!ctx.io.isTty)
    throw new UsageError(`${action} is destructive: pass --confirm ${expected} (no terminal to ask on)`);
  const answer = (await ctx.io.ask(`${action}. Type the organization id "${expected}" to confirm: `)).trim();
  if (answer !== expected)
    throw new RefusedError(`confirmation declined (typed ${JSON.stringify(answer)}); nothing was changed`);
}
