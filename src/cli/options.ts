/** Command-line option parsing shared by the commands. */
import { InvalidArgument } from '../sim/errors.ts';

/** An integer flag within [min, max]; absent gives `fallback`; anything else is an error naming the flag. */
export function intOption(
  name: string,
  raw: string | undefined,
  fallback: number,
  min: number,
  max: number,
): number {
  if (raw === undefined) return fallback;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new InvalidArgument(`--${name}`, `must be an integer in [${min}, ${max}], got "${raw}"`);
  }
  return v;
}

/** A number flag within [min, max]; absent gives `fallback`; anything else is an error naming the flag. */
export function numberOption(
  name: string,
  raw: string | undefined,
  fallback: number,
  min: number,
  max: number,
): number {
  if (raw === undefined) return fallback;
  const v = Number(raw);
  if (!Number.isFinite(v) || v < min || v > max) {
    throw new InvalidArgument(`--${name}`, `must be a number in [${min}, ${max}], got "${raw}"`);
  }
  return v;
}
