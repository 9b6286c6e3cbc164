/** Reading numbers out of a model's free-text answer. */

/** Drops `<think>...</think>` blocks: reasoning models think aloud, and numbers in there are not the answer. */
export function stripReasoning(text: string): string {
  return text.replace(/<think>[\s\S]*?(<\/think>|$)/gi, ' ');
}

/**
 * A number with an optional sign as models write it (ASCII, U+2212 minus, U+2013 en dash). Not preceded by a digit,
 * so the dash in a range such as `30-40%` is not read as a minus.
 */
const SIGNED_NUMBER = String.raw`(?<![\d.])([+\-\u2212\u2013]?)\s*(\d+(?:\.\d+)?|\.\d+)`;

export interface FoundNumber {
  value: number;
  /** The number had an explicit + or - sign. */
  signed: boolean;
  /** The number was followed by a % sign. */
  percent: boolean;
}

/** Every number in `text`, in order, with whether it was signed and whether a % followed it. */
export function findNumbers(text: string): FoundNumber[] {
  const out: FoundNumber[] = [];
  for (const m of text.matchAll(new RegExp(`${SIGNED_NUMBER}(\\s*%)?`, 'g'))) {
    const sign = m[1] ?? '';
    const magnitude = Number(m[2]);
    out.push({
      value: sign === '' || sign === '+' ? magnitude : -magnitude,
      signed: sign !== '',
      percent: m[3] !== undefined,
    });
  }
  return out;
}

/** A text that is one number and nothing else (an optional % or sign allowed), or undefined. */
export function wholeNumber(text: string): number | undefined {
  const m = new RegExp(`^\\s*${SIGNED_NUMBER}\\s*%?\\s*\\.?\\s*$`).exec(text);
  if (!m) return undefined;
  const magnitude = Number(m[2]);
  return m[1] === '' || m[1] === '+' ? magnitude : -magnitude;
}
