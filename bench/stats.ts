/** Small helpers for timing and formatting benchmark figures. */

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Seconds taken by `fn`. */
export function timeIt(fn: () => void): number {
  const t0 = performance.now();
  fn();
  return (performance.now() - t0) / 1000;
}

/** Wall-clock and process CPU seconds (user + system, all threads) taken by `fn`. */
export interface Timing {
  wall: number;
  cpu: number;
}

/**
 * CPU time is what the comparisons use when other processes share the cores: a pass preempted by them loses
 * wall-clock time but not CPU time. On an idle machine the two agree for single-threaded loops.
 */
export function timeBoth(fn: () => void): Timing {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  fn();
  const wall = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  return { wall, cpu: (c.user + c.system) / 1e6 };
}

export async function timeAsync(fn: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
}

/** An integer with thousands separators: 41,234. */
export function int(x: number): string {
  return Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : 'n/a';
}

export function pct(x: number, digits = 1): string {
  return Number.isFinite(x) ? `${(100 * x).toFixed(digits)}%` : 'n/a';
}

export function ratio(x: number, digits = 2): string {
  return Number.isFinite(x) ? `${x.toFixed(digits)}x` : 'n/a';
}

export function mib(bytes: number, digits = 2): string {
  return Number.isFinite(bytes) ? `${(bytes / 2 ** 20).toFixed(digits)} MiB` : 'n/a';
}

/** Prints a progress line with the seconds since the bench started. */
const start = performance.now();
export function progress(msg: string): void {
  console.log(`[bench ${((performance.now() - start) / 1000).toFixed(1).padStart(5)}s] ${msg}`);
}
