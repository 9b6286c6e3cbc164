/** Small helpers shared by the scripted experts. */
import { EE_STEP } from '../../robots/arm7/controller.ts';

/**
 * Proportional Cartesian command from `from` toward `to`, in action units (1 = EE_STEP metres per control step),
 * saturated per axis at `limit`. Writes action[0..2]; leaves the gripper command alone.
 */
export function towards(
  from: ArrayLike<number>,
  to: ArrayLike<number>,
  action: Float32Array,
  gain = 1,
  limit = 1,
): void {
  for (let k = 0; k < 3; k++) {
    const a = (gain * (to[k]! - from[k]!)) / EE_STEP;
    action[k] = Math.max(-limit, Math.min(limit, a));
  }
}

/** Euclidean distance between two 3-vectors. */
export function dist3(a: ArrayLike<number>, b: ArrayLike<number>): number {
  return Math.hypot(a[0]! - b[0]!, a[1]! - b[1]!, a[2]! - b[2]!);
}

/** Horizontal distance between two points. */
export function distXY(a: ArrayLike<number>, b: ArrayLike<number>): number {
  return Math.hypot(a[0]! - b[0]!, a[1]! - b[1]!);
}

/** x clamped to [0, 1]: progress fractions. */
export function clamp01(x: number): number {
  return x < 0 ? 0 : x > 1 ? 1 : x;
}
