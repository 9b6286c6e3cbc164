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
  // Number('') is 0: a flag given an empty value must not pass as zero.
  const v = raw.trim() === '' ? NaN : Number(raw);
  if (!Number.isFinite(v) || (integer && !Number.isInteger(v)) || v < min || v > max) {
    throw new InvalidArgument(
      `--${name}`,
      `must be ${integer ? 'an integer' : 'a number'} in [${min}, ${max}], got "${raw}"`,
    );
  }
  return v;
}

/** An optional number flag within [min, max]: undefined when absent. */
export function optionalNumberOption(
  name: string,
  raw: string | undefined,
  min: number,
  max: number,
): number | undefined {
  return raw === undefined ? undefined : numberOption(name, raw, 0, min, max);
}

/**
 * `--ppo key=value[,key=value...]`: learner hyperparameter overrides, e.g. `initLogStd=-0.5,learningRate=1e-3` or
 * `actorHidden=256/256`. Values are numbers, true/false, null, or slash-separated layer widths; which keys exist
 * and their limits are checked by `checkPpoConfig`, which names the field.
 */
export function parsePpoOverrides(raw: string | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (raw === undefined || raw.trim() === '') return out;
  for (const item of raw.split(',')) {
    const eq = item.indexOf('=');
    const key = item.slice(0, eq).trim();
    const text = item.slice(eq + 1).trim();
    if (eq <= 0 || text === '') {
      throw new InvalidArgument('--ppo', `expected key=value pairs separated by commas, got "${item}"`);
    }
    if (text === 'true' || text === 'false') out[key] = text === 'true';
    else if (text === 'null') out[key] = null;
    else if (text.includes('/')) out[key] = text.split('/').map(Number);
    else {
      const v = Number(text);
      if (!Number.isFinite(v)) {
        throw new InvalidArgument(
          `--ppo ${key}`,
          `must be a number, true, false, null or widths like 64/64, got "${text}"`,
        );
      }
      out[key] = v;
    }
  }
  return out;
}
