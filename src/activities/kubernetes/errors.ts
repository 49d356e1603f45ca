import { ApplicationFailure } from '@temporalio/common';
import { KubernetesFailureType } from '../../contracts/kubernetes';
import { describeContext, FailureType, isTransientNetworkError, messageOf } from '../../errors';

/** The HTTP status of an API error, or undefined for other errors (network, parsing, …). */
export function httpStatusOf(err: unknown): number | undefined {
  // Structural, not instanceof: under Jest the client library lives in another realm.
  if (typeof err !== 'object' || err === null) return undefined;
  const { code, headers } = err as { code?: unknown; headers?: unknown };
  return typeof code === 'number' && typeof headers === 'object' ? code : undefined;
}

/** The API server's own explanation (the Status object's message) of an API error. */
export function statusMessageOf(err: unknown): string {
  const body = (err as { body?: unknown }).body;
  let parsed: unknown = body;
  if (typeof body === 'string') {
    try {
      parsed = JSON.parse(body);
    } catch {
      return body.trim() || messageOf(err);
    }
  }
  const message = (parsed as { message?: unknown } | undefined)?.message;
  return typeof message === 'string' ? message : `HTTP ${httpStatusOf(err) ?? '?'}`;
}

/**
 * True when retrying may help: the API server unreachable or restarting, overloaded (429),
 * failing (5xx) or a write conflict (409). Not found, forbidden and invalid requests are final.
 */
export function isRetryableKubernetesError(err: unknown): boolean {
  const status = httpStatusOf(err);
  if (status === undefined) return isTransientNetworkError(err);
  return status === 409 || status === 429 || status >= 500;
}

/**
 * Turns an error of the API server into a failure that names the object: non-retryable for
 * 404 (as `UnknownKubernetesObject`), 401/403 and invalid requests; retryable otherwise.
 */
export function kubernetesFailure(err: unknown, object: string, notFound?: string): ApplicationFailure {
  const prefix = describeContext({ store: 'kubernetes', object });
  const status = httpStatusOf(err);
  if (status === 404) {
    return ApplicationFailure.create({
      type: KubernetesFailureType.UnknownObject,
      message: `${prefix} ${notFound ?? `${object} does not exist`}: ${statusMessageOf(err)}`,
      nonRetryable: true,
    });
  }
  if (status === undefined) {
    return ApplicationFailure.create({
      type: FailureType.StoreUnavailable,
      message: `${prefix} the Kubernetes API server did not answer: ${messageOf(err)}`,
      nonRetryable: false,
    });
  }
  return ApplicationFailure.create({
    type: isRetryableKubernetesError(err) ? FailureType.StoreUnavailable : FailureType.StoreRejected,
    message: `${prefix} the API server answered ${status}: ${statusMessageOf(err)}`,
    nonRetryable: !isRetryableKubernetesError(err),
  });
}

/** A permanent failure of a Kubernetes operation, naming the object. */
export function kubernetesRefusal(type: string, object: string, message: string): ApplicationFailure {
  return ApplicationFailure.create({
    type,
    message: `${describeContext({ store: 'kubernetes', object })} ${message}`,
    nonRetryable: true,
  });
}

/** Runs one API call and classifies what it throws; `notFound` explains a 404. */
export async function callApi<T>(object: string, call: () => Promise<T>, notFound?: string): Promise<T> {
  try {
    return await call();
  } catch (err) {
    throw kubernetesFailure(err, object, notFound);
  }
}

/** What helm says when the API server is away or restarting: worth a retry. */
const HELM_TRANSIENT =
  /cluster unreachable|connection refused|connection reset|i\/o timeout|TLS handshake timeout|unexpected EOF|server is currently unable|request timed out|too many requests/i;
/**
 * A failure of helm, classified by what it printed: an unknown release is refused, an API server
 * that is away is retried, anything else is a failed rollout naming the release.
 */
export function helmFailure(
  run: { code: number | null; lines: string[] },
  object: string,
  doing: string,
): ApplicationFailure {
  const said = run.lines.join(' | ');
  if (/release: not found/.test(said)) {
    return kubernetesRefusal(KubernetesFailureType.UnknownObject, object, `${object} does not exist`);
  }
  const transient = HELM_TRANSIENT.test(said);
  return ApplicationFailure.create({
    type: transient ? FailureType.StoreUnavailable : KubernetesFailureType.RolloutFailed,
    message: `[kubernetes object=${object}] ${doing} failed (exit ${run.code ?? 'signal'}): ${said}`,
    nonRetryable: !transient,
  });
}
