/**
 * Potential-based reward shaping with progress as the potential (Ng et al. 1999; the rules of DESIGN.md):
 *
 *   r'_t = r_t + k * (gamma * Phi(s_{t+1}) - Phi(s_t))
 *
 * - gamma is the learner's discount (one setting, not two); k is a scale.
 * - `terminated` (a true end of the MDP): Phi(s_{t+1}) := 0. `truncated` (time limit, disconnect): Phi(s_T) is
 *   kept and the transition is marked for bootstrapping; a learner that cannot bootstrap asks for 0 instead.
 * - Every state's Phi is decided once and stored; the transition into a state and the one out of it use the same
 *   number. A potential that changes over training (a model being fine-tuned) stays policy-invariant only so.
 * - A state without an answer (not queried this step, late past the deadline, NaN, a parse failure, a timeout)
 *   holds the previous state's Phi: querying every k steps and holding in between is still potential-based.
 *   Missing is never read as 0, since 0 can mean "done" in some model conventions. Leading states of an episode
 *   with no answer yet take the first answer the episode gets; an episode without any answer has Phi = 0
 *   throughout, which shapes nothing. Answers are clamped to [0, 1].
 * - `naive` (Phi' - Phi, no gamma) and `progress` (Phi' as the reward) exist only to show the semantic trap:
 *   naive equals the shaped reward plus (1 - gamma) * Phi' per step, which pays for lingering near completion.
 */
import { InvalidArgument } from '../sim/errors.ts';

export type ShapingMode = 'potential' | 'naive' | 'progress' | 'sparse';
export const SHAPING_MODES: readonly ShapingMode[] = ['potential', 'naive', 'progress', 'sparse'];

export interface ShapingConfig {
  /** How progress enters the reward (default `potential`; the others are ablations). */
  mode: ShapingMode;
  /** The learner's discount factor, in [0, 1]. */
  gamma: number;
  /** Scale k of the progress term (default 1). */
  scale?: number;
  /** Keep Phi(s_T) on truncation for a learner that bootstraps from the final observation (default true). */
  bootstrapTruncated?: boolean;
}

export function checkShapingConfig(cfg: ShapingConfig): Required<ShapingConfig> {
  if (!SHAPING_MODES.includes(cfg.mode)) {
    throw new InvalidArgument(
      'shaping.mode',
      `must be one of ${SHAPING_MODES.join(', ')}, got ${String(cfg.mode)}`,
    );
  }
  if (!(cfg.gamma >= 0 && cfg.gamma <= 1)) {
    throw new InvalidArgument('shaping.gamma', `must be in [0, 1], got ${cfg.gamma}`);
  }
  const scale = cfg.scale ?? 1;
  if (!Number.isFinite(scale))
    throw new InvalidArgument('shaping.scale', `must be a finite number, got ${scale}`);
  return { mode: cfg.mode, gamma: cfg.gamma, scale, bootstrapTruncated: cfg.bootstrapTruncated ?? true };
}

/** A model's answer as a potential: clamped to [0, 1]; NaN, Inf, undefined and null are missing (NaN). */
export function toPotential(answer: number | null | undefined): number {
  if (answer === null || answer === undefined || !Number.isFinite(answer)) return NaN;
  return answer < 0 ? 0 : answer > 1 ? 1 : answer;
}

/** The shaped reward of one transition, given the stored potentials of its two states. */
export function shapedReward(
  cfg: Required<ShapingConfig>,
  reward: number,
  phi: number,
  phiNext: number,
  terminated: boolean,
  truncated: boolean,
): number {
  // The end of the MDP has potential 0; a truncated episode's last state keeps its own unless the learner
  // cannot bootstrap from it.
  const next = terminated || (truncated && !cfg.bootstrapTruncated) ? 0 : phiNext;
  switch (cfg.mode) {
    case 'potential':
      return reward + cfg.scale * (cfg.gamma * next - phi);
    case 'naive':
      return reward + cfg.scale * (next - phi);
    case 'progress':
      return reward + cfg.scale * next;
    case 'sparse':
      return reward;
    default: {
      const never: never = cfg.mode;
      throw new InvalidArgument('shaping.mode', `unknown mode ${String(never)}`);
    }
  }
}

/**
 * The potentials of one env's current episode, state by state (state 0 is the reset state), with answers that
 * may arrive late. `record` stores an answer (or a patch) for a state; `resolve` decides every state's Phi by
 * the rules above and fixes it: later answers for resolved states are ignored, so a state never gets two values.
 */
export class EpisodePotentials {
  private answers: Float64Array = new Float64Array(64);
  private resolved: Float64Array = new Float64Array(64);
  /** States recorded so far (answer or not). */
  private length = 0;
  /** States whose Phi is fixed. */
  private fixed = 0;

  /** Starts a new episode: no state carries over. */
  reset(): void {
    this.length = 0;
    this.fixed = 0;
  }

  /** Number of states seen in this episode. */
  get states(): number {
    return this.length;
  }

  /** Adds state t = states (in order), with its answer if one is already here. */
  push(answer?: number | null): number {
    const t = this.length;
    if (t >= this.answers.length) {
      const grow = (a: Float64Array): Float64Array => {
        const b = new Float64Array(a.length * 2);
        b.set(a);
        return b;
      };
      this.answers = grow(this.answers);
      this.resolved = grow(this.resolved);
    }
    this.answers[t] = toPotential(answer);
    this.length++;
    return t;
  }

  /** A (late) answer for state t; ignored once t is resolved. Returns whether it was taken. */
  record(t: number, answer: number | null | undefined): boolean {
    if (!Number.isInteger(t) || t < 0 || t >= this.length) {
      throw new InvalidArgument('state', `must be an integer in [0, ${this.length - 1}], got ${t}`);
    }
    if (t < this.fixed) return false;
    const phi = toPotential(answer);
    if (!Number.isNaN(phi)) this.answers[t] = phi;
    return true;
  }

  /**
   * Fixes Phi for states [0, upTo) (default: all recorded) and returns them (a view valid until the next call).
   * Missing answers hold the previous state's Phi; leading missing ones take the episode's first answer.
   */
  resolve(upTo = this.length): Float64Array {
    const end = Math.min(upTo, this.length);
    for (let t = this.fixed; t < end; t++) {
      const a = this.answers[t]!;
      if (!Number.isNaN(a)) {
        this.resolved[t] = a;
      } else if (t > 0) {
        this.resolved[t] = this.resolved[t - 1]!;
      } else {
        // The reset state has no answer: take the first answer this episode has so far, or 0 (shapes nothing).
        let first = 0;
        for (let k = 1; k < this.length; k++) {
          if (!Number.isNaN(this.answers[k]!)) {
            first = this.answers[k]!;
            break;
          }
        }
        this.resolved[t] = first;
      }
    }
    this.fixed = Math.max(this.fixed, end);
    return this.resolved.subarray(0, this.fixed);
  }
}
