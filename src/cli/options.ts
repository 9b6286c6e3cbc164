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
  return numberOption(name, raw, fallback, min, max, true);
}

/** A number flag within [min, max] (an integer when `integer`); absent gives `fallback`. */
export function numberOption(
  name: string,
  raw: string | undefined,
  fallback: number,
  min: number,
  max: number,
  integer = false,
): number {
  if (raw === undefined) return fallback;
  const v = Number(raw);
  if (!Number.isFinite(v) || (integer && !Number.isInteger(v)) || v < min || v > max) {
    throw new InvalidArgument(
      `--${name}`,
      `must be ${integer ? 'an integer' : 'a number'} in [${min}, ${max}], got "${raw}"`,
    );
  }
  return v;
}
