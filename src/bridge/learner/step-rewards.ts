/**
 * Shaped rewards step by step, for a learner that needs every reward in the reply to its step (the remote
 * learner): unlike `RolloutRewards`, which lets answers arrive during a whole rollout and shapes at its end, this
 * waits for the model's answers for the states of this step before shaping it. That wait is the latency cost of
 * remote shaping (one model round trip per step, batched over the sub-envs); `stride` cuts it, since states off
 * the stride hold the previous Phi and need no answer.
 *
 * The rules are those of `EpisodePotentials` and `shapedReward` (DESIGN.md): each state's Phi is decided once,
 * stored and reused by the transition out of it; terminated means Phi(s') = 0; truncated keeps Phi(s_T); a missing
 * answer holds the previous Phi; no state crosses episodes. What differs by autoreset mode is which frames exist:
 * - `next-step` and `disabled`: the ending step returns s_T itself, so a truncated s_T is scored; the reset step
 *   (next-step) or masked reset (disabled) starts a fresh episode.
 * - `same-step`: the ending step already returns the next episode's first state, so s_T's frames are gone and a
 *   truncated s_T holds the previous state's Phi (the hold rule, as `RolloutRewards` does).
 */
import type { ProgressRequest } from '../../reward/model.ts';
import type { RewardService } from '../../reward/service.ts';
import { EpisodePotentials, shapedReward, type ShapingConfig } from '../../reward/shaping.ts';
import type { AutoresetMode } from '../../vector/layout.ts';
import { envViews } from '../../reward/image-tensor.ts';

export interface StepRewardsOptions {
  numEnvs: number;
  autoreset: AutoresetMode;
  shaping: Required<ShapingConfig>;
  /** Undefined: no model (sparse, dense): rewards pass through and Phi is NaN. */
  service: RewardService | undefined;
  instruction: string;
  /** Cameras the model is fed, as the vector env's image observations name them. */
  cameras: readonly string[];
  imageSize: number;
  /** Score states every `stride` control steps of an episode (the reset state always). */
  stride: number;
  /** Longest wait for one step's answers; answers later than this are missing (held). */
  deadlineMs: number;
}

/** What the vector env returned for the states the sub-envs are now in. */
export interface StateData {
  /** Camera images by name, [N, size, size, 3] each. */
  images?: Record<string, Uint8Array>;
  /** Privileged progress (the oracle reads it). */
  progress?: ArrayLike<number>;
}

export interface StepData extends StateData {
  /** Task rewards of the step (sparse, plus dense terms for the dense baseline). */
  rewards: ArrayLike<number>;
  terminated: ArrayLike<number>;
  truncated: ArrayLike<number>;
  episodeStep: ArrayLike<number>;
}

export interface StepRewardsResult {
  /** [N] shaped rewards (the task rewards when nothing is shaped). */
  rewards: Float64Array;
  /** [N] Phi stored for the state each sub-env is now in (0 for a terminal state; NaN without a model). */
  phi: Float64Array;
  /** [N] Phi used for the last state of an episode that ended this step (NaN where none ended). */
  finalPhi: Float64Array;
  /** Milliseconds spent waiting for the model. */
  waitMs: number;
  /** Answers that were missing or later than the deadline this step (their states held the previous Phi). */
  missing: number;
}

interface Episode {
  id: number;
  potentials: EpisodePotentials;
}

interface Transition {
  env: number;
  episode: Episode;
  prev: number;
  /** State index of s_{t+1}, or -1 when the step terminated the MDP (Phi := 0). */
  next: number;
}

export class StepRewards {
  private readonly episodes: (Episode | undefined)[];
  /** 1 where the sub-env's episode ended on the previous step and it has not been reset since. */
  private readonly ended: Uint8Array;
  private nextEpisodeId = 0;
  private pending: Promise<boolean>[] = [];

  constructor(private readonly o: StepRewardsOptions) {
    this.episodes = new Array<Episode | undefined>(o.numEnvs);
    this.ended = new Uint8Array(o.numEnvs);
  }

  get shapes(): boolean {
    return this.o.service !== undefined && this.o.shaping.mode !== 'sparse';
  }

  /** Starts fresh episodes for the sub-envs in `mask` (all when absent) and returns every sub-env's Phi. */
  async reset(
    data: StateData,
    mask?: ArrayLike<boolean | number>,
  ): Promise<{ phi: Float64Array; waitMs: number }> {
    for (let n = 0; n < this.o.numEnvs; n++) {
      if (mask === undefined || mask[n]) this.begin(n, data);
    }
    const { waitMs } = await this.settle();
    return { phi: this.currentPhi(), waitMs };
  }

  async step(data: StepData): Promise<StepRewardsResult> {
    const { numEnvs, autoreset, stride } = this.o;
    const transitions: (Transition | undefined)[] = new Array<Transition | undefined>(numEnvs);
    const finalPhi = new Float64Array(numEnvs).fill(NaN);
    const terminalNow = new Uint8Array(numEnvs);
    for (let n = 0; n < numEnvs; n++) {
      if (autoreset === 'next-step' && this.ended[n]) {
        // The env reset on this step and ignored the action: no transition, the new episode's first state.
        this.begin(n, data);
        continue;
      }
      const ep = this.episodes[n];
      if (!ep) continue;
      const prev = ep.potentials.states - 1;
      const terminated = data.terminated[n] !== 0;
      const truncated = data.truncated[n] !== 0;
      if (terminated) {
        transitions[n] = { env: n, episode: ep, prev, next: -1 };
      } else {
        const next = ep.potentials.push();
        transitions[n] = { env: n, episode: ep, prev, next };
        // A truncated s_T is scored whenever its frames are here: its Phi is what bootstrapping uses.
        const framesHere = !(truncated && autoreset === 'same-step');
        if (framesHere && (truncated || data.episodeStep[n]! % stride === 0)) this.query(n, ep, next, data);
      }
      if (terminated || truncated) {
        if (autoreset === 'same-step') {
          // The returned state is already the next episode's first one.
          this.begin(n, data);
        } else {
          this.ended[n] = 1;
          if (terminated) terminalNow[n] = 1;
        }
      }
    }
    const { waitMs, missing } = await this.settle();
    const rewards = new Float64Array(numEnvs);
    for (let n = 0; n < numEnvs; n++) {
      const r = data.rewards[n]!;
      const tr = transitions[n];
      // No transition: the next-step reset step, whose reward Gymnasium defines as 0.
      if (!tr || !this.shapes) {
        rewards[n] = tr ? r : 0;
        continue;
      }
      const phis = tr.episode.potentials.resolve();
      const phi = phis[tr.prev]!;
      const phiNext = tr.next < 0 ? 0 : phis[tr.next]!;
      const terminated = data.terminated[n] !== 0;
      const truncated = data.truncated[n] !== 0;
      rewards[n] = shapedReward(this.o.shaping, r, phi, phiNext, terminated, truncated);
      if (terminated || truncated) finalPhi[n] = phiNext;
    }
    const phi = this.currentPhi();
    for (let n = 0; n < numEnvs; n++) if (terminalNow[n] && this.shapes) phi[n] = 0;
    return { rewards, phi, finalPhi, waitMs, missing };
  }

  private begin(n: number, data: StateData): void {
    const ep: Episode = { id: this.nextEpisodeId++, potentials: new EpisodePotentials() };
    this.episodes[n] = ep;
    this.ended[n] = 0;
    ep.potentials.push();
    this.query(n, ep, 0, data);
  }

  private query(n: number, ep: Episode, state: number, data: StateData): void {
    if (!this.shapes) return;
    const req: ProgressRequest = {
      instruction: this.o.instruction,
      views: envViews(data.images, n, this.o.cameras, this.o.imageSize),
      envId: n,
      episodeId: ep.id,
      step: state,
      ...(data.progress ? { privileged: { progress: data.progress[n]! } } : {}),
    };
    this.pending.push(
      this.o.service!.submit(req).then((answer) => {
        // Ignored (returns false) once the state is resolved: a late answer never changes a stored Phi.
        ep.potentials.record(state, answer.status === 'ok' ? answer.progress : NaN);
        return answer.status === 'ok';
      }),
    );
  }

  /** Waits for this step's answers up to the deadline. */
  private async settle(): Promise<{ waitMs: number; missing: number }> {
    const pending = this.pending;
    this.pending = [];
    if (pending.length === 0) return { waitMs: 0, missing: 0 };
    const t0 = performance.now();
    let timer: ReturnType<typeof setTimeout> | undefined;
    let ok = 0;
    const counted = pending.map((p) => p.then((good) => void (good && ok++)));
    await Promise.race([
      Promise.all(counted),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, this.o.deadlineMs))),
    ]);
    clearTimeout(timer);
    return { waitMs: performance.now() - t0, missing: pending.length - ok };
  }

  /** Phi of each sub-env's current state, fixed now (NaN without a model). */
  private currentPhi(): Float64Array {
    const phi = new Float64Array(this.o.numEnvs).fill(NaN);
    if (!this.shapes) return phi;
    for (let n = 0; n < this.o.numEnvs; n++) {
      const ep = this.episodes[n];
      if (!ep) continue;
      const phis = ep.potentials.resolve();
      phi[n] = phis[phis.length - 1]!;
    }
    return phi;
  }
}
