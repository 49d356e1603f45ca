/**
 * A request the SDK refused before sending anything to Temporal: names the field and the rule it
 * broke, e.g. `gracePeriod: expected a duration such as 7d, 12h or 30m; got "soon"`.
 */
export class InvalidRequestError extends Error {
  override readonly name = 'InvalidRequestError';
  constructor(
    readonly field: string,
    readonly rule: string,
  ) {
    super(`${field}: ${rule}`);
  }
}
