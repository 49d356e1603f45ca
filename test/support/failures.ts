/** Every message in an error's cause chain, joined: a workflow failure's reason sits a few causes deep. */
export function failureText(err: unknown): string {
  const messages: string[] = [];
  let current: unknown = err;
  for (let depth = 0; depth < 8 && current instanceof Error; depth++) {
    messages.push(current.message);
    current = current.cause;
  }
  return messages.join(' <- ');
}

/** Runs `promise` expecting it to reject; returns the rejection (fails the test if it resolves). */
export async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a failure, but the operation succeeded');
}
