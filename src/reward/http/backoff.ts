/**
 * Retry delays: exponential backoff with "equal jitter" (half the delay fixed, half random), so clients that
 * failed together do not retry together, yet every retry still waits at least half its nominal delay.
 */

/** Delay before retry number `retry` (0 for the first): min(cap, base * 2^retry) * (0.5 + 0.5 * random). */
export function backoffDelay(retry: number, baseMs: number, capMs: number, random: () => number): number {
  const nominal = Math.min(capMs, baseMs * 2 ** retry);
  const r = Math.min(1, Math.max(0, random()));
  return nominal * (0.5 + 0.5 * r);
}

/**
 * A `Retry-After` header in ms: delta-seconds or an HTTP date (RFC 9110, section 10.2.3); undefined when absent
 * or unreadable.
 */
export function retryAfterMs(header: string | null, now = Date.now()): number | undefined {
  if (header === null || header.trim() === '') return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return seconds >= 0 ? seconds * 1000 : undefined;
  const at = Date.parse(header);
  return Number.isFinite(at) ? Math.max(0, at - now) : undefined;
}
