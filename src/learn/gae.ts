/**
 * Generalised advantage estimation (Schulman et al. 2016) with `terminated` and `truncated` kept apart, as
 * Gymnasium defines them and Brax's `compute_gae` takes them:
 *
 * - terminated (a true end of the MDP): the next state's value is 0.
 * - truncated (time limit, disconnect): the episode was cut short, so bootstrap from the value of its final
 *   observation, `finalValues[t, n]` (the observation the env returned as `final_obs`, not the reset one).
 * - In both cases the advantage does not flow back across the boundary: step t+1 belongs to a new episode.
 *
 * All [T, N] buffers are row-major, time-major: element (t, n) is at index t * N + n. Row t holds the
 * transition from the observation acted on at step t (value `values[t, n]`) to the one the env returned.
 *
 *   delta_t = r_t + gamma * V_next - V(s_t),   V_next = 0 | finalValues[t] | values[t+1] (lastValues at T-1)
 *   A_t     = delta_t + gamma * lambda * (1 - done_t) * A_{t+1},   done_t = terminated_t or truncated_t
 *   R_t     = A_t + V(s_t)   (the value target)
 */
import { InvalidArgument } from '../sim/errors.ts';

export interface GaeInput {
  /** Rollout length T. */
  T: number;
  /** Number of envs N. */
  N: number;
  /** [T, N] rewards. */
  rewards: ArrayLike<number>;
  /** [T, N] value of the observation acted on at each step. */
  values: ArrayLike<number>;
  /** [T, N] nonzero where the step ended the MDP. */
  terminated: ArrayLike<number>;
  /** [T, N] nonzero where the step cut the episode short (and not terminated). */
  truncated: ArrayLike<number>;
  /** [T, N] value of the final observation of the ended episode; read only where truncated (and not terminated). */
  finalValues: ArrayLike<number>;
  /** [N] value of the observation after the last step (bootstraps unfinished episodes). */
  lastValues: ArrayLike<number>;
  /** Discount factor. */
  gamma: number;
  /** GAE lambda: 0 is one-step TD, 1 is Monte Carlo with bootstrapping at the rollout end. */
  lambda: number;
}

/** Writes advantages and returns ([T, N] each) from a rollout. */
export function computeGae(input: GaeInput, outAdvantages: Float32Array, outReturns: Float32Array): void {
  const { T, N, rewards, values, terminated, truncated, finalValues, lastValues, gamma, lambda } = input;
  const size = T * N;
  for (const [name, arr] of [
    ['rewards', rewards],
    ['values', values],
    ['terminated', terminated],
    ['truncated', truncated],
    ['finalValues', finalValues],
    ['advantages', outAdvantages],
    ['returns', outReturns],
  ] as const) {
    if (arr.length < size)
      throw new InvalidArgument(`gae.${name}`, `needs T * N = ${size} values, got ${arr.length}`);
  }
  if (lastValues.length < N)
    throw new InvalidArgument('gae.lastValues', `needs N = ${N} values, got ${lastValues.length}`);
  for (let n = 0; n < N; n++) {
    let next = 0; // A_{t+1}
    for (let t = T - 1; t >= 0; t--) {
      const k = t * N + n;
      let nextValue: number;
      let carry: number;
      if (terminated[k]) {
        nextValue = 0;
        carry = 0;
      } else if (truncated[k]) {
        nextValue = finalValues[k]!;
        carry = 0;
      } else {
        nextValue = t === T - 1 ? lastValues[n]! : values[k + N]!;
        carry = 1;
      }
      const delta = rewards[k]! + gamma * nextValue - values[k]!;
      next = delta + gamma * lambda * carry * next;
      outAdvantages[k] = next;
      outReturns[k] = next + values[k]!;
    }
  }
}
