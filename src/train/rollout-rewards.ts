/**
 * Rewards of a rollout under progress shaping. Each state an env visits gets a potential slot in its episode's
 * `EpisodePotentials`; states on the query stride are sent to the reward service, whose answers fill their slots
 * whenever they arrive, so the simulator never waits for the model. When the rollout is full, `finish` waits for
 * outstanding answers up to a deadline, fixes every potential (late ones after that are ignored; missing ones hold
 * the previous state's value) and returns the shaped rewards of all transitions, each Phi computed once and
 * used by both transitions that touch its state.
 *
 * With same-step autoreset the frames of a truncated episode's last state are gone by the time we see the step
 * (the env has already reset), so that state holds the previous state's Phi: the hold rule, as for a state
 * between two queries.
 */
import type { ProgressRequest, ProgressResponse } from '../reward/model.ts';
import type { RewardService } from '../reward/service.ts';
import { EpisodePotentials, shapedReward, type ShapingConfig } from '../reward/shaping.ts';
import { envViews } from '../reward/image-tensor.ts';

export interface StepData {
  /** [N] sparse rewards of the step. */
  rewards: ArrayLike<number>;
  terminated: ArrayLike<number>;
  truncated: ArrayLike<number>;
  /** Control step of each env's current episode after the step (0 right after a reset). */
  episodeStep: ArrayLike<number>;
  /** Images of the state each env is now in (after a same-step reset: the new episode's first state). */
  images?: Record<string, Uint8Array>;
  /** Privileged progress of that state (for the oracle). */
  progress?: ArrayLike<number>;
}

interface Episode {
  id: number;
  potentials: EpisodePotentials;
  /** Answers still to come for this episode. */
  pending: number;
}

interface Transition {
  episode: Episode;
  prev: number;
  /** State index of s_{t+1} in the episode, or -1 when the step terminated the MDP (Phi := 0). */
  next: number;
}

export interface RolloutRewardStats {
  /** States sent to the model in this rollout. */
  queried: number;
  /** Answers that came back ok before the deadline. */
  answered: number;
  /** Answers that were NaN, unparsable, timed out or failed: their states held the previous Phi. */
  missing: number;
  /** Answers still outstanding at the deadline (imputed; they are ignored if they arrive later). */
  late: number;
  /** Milliseconds spent waiting for answers after the rollout was full. */
  waitMs: number;
  /** Mean, min and max of the potentials used. */
  phi: { mean: number; min: number; max: number };
  /** Mean shaped and sparse reward per step. */
  shapedMean: number;
  sparseMean: number;
}

export interface RolloutRewardsOptions {
  numEnvs: number;
  numSteps: number;
  shaping: Required<ShapingConfig>;
  service: RewardService | undefined;
  instruction: string;
  /** Cameras the model is fed, in the order of the vector env's image observations. */
  cameras: readonly string[];
  imageSize: number;
  /** Query the model every `stride` control steps of an episode (the reset state always); hold in between. */
  stride: number;
  /** Each answer as it arrives (live displays): env, episode id, state index in the episode, Phi or NaN. */
  onAnswer?: (env: number, episode: number, state: number, phi: number) => void;
}

export class RolloutRewards {
  private readonly transitions: (Transition | undefined)[];
  private readonly sparse: Float64Array;
  private readonly terminated: Uint8Array;
  private readonly truncated: Uint8Array;
  private readonly current: Episode[] = [];
  private nextEpisodeId = 0;
  private t = 0;
  private counts = { queried: 0, answered: 0, missing: 0 };
  private readonly waiters = new Set<Promise<void>>();

  constructor(private readonly o: RolloutRewardsOptions) {
    this.transitions = new Array(o.numSteps * o.numEnvs);
    this.sparse = new Float64Array(o.numSteps * o.numEnvs);
    this.terminated = new Uint8Array(o.numSteps * o.numEnvs);
    this.truncated = new Uint8Array(o.numSteps * o.numEnvs);
  }

  /** The id of env n's current episode (as given to the reward service and `onAnswer`). */
  episodeOf(n: number): number {
    return this.current[n]?.id ?? -1;
  }

  /** Whether rewards need the model at all. */
  get usesModel(): boolean {
    return this.o.shaping.mode !== 'sparse' && this.o.service !== undefined;
  }

  /** Starts every env's first episode from the states after a reset. */
  start(data: Pick<StepData, 'images' | 'progress'>): void {
    for (let n = 0; n < this.o.numEnvs; n++) this.beginEpisode(n, data);
  }

  private beginEpisode(n: number, data: Pick<StepData, 'images' | 'progress'>): void {
    const ep: Episode = { id: this.nextEpisodeId++, potentials: new EpisodePotentials(), pending: 0 };
    this.current[n] = ep;
    ep.potentials.push();
    this.query(n, ep, 0, data);
  }

  private query(n: number, ep: Episode, state: number, data: Pick<StepData, 'images' | 'progress'>): void {
    const service = this.o.service;
    if (!service || this.o.shaping.mode === 'sparse') return;
    const req: ProgressRequest = {
      instruction: this.o.instruction,
      views: envViews(data.images, n, this.o.cameras, this.o.imageSize),
      envId: n,
      episodeId: ep.id,
      step: state,
      ...(data.progress ? { privileged: { progress: data.progress[n]! } } : {}),
    };
    this.counts.queried++;
    ep.pending++;
    const done = service.submit(req).then((answer: ProgressResponse) => {
      ep.pending--;
      if (answer.status === 'ok') this.counts.answered++;
      else this.counts.missing++;
      // Taken only while the state is not yet fixed; afterwards a late answer changes nothing.
      ep.potentials.record(state, answer.status === 'ok' ? answer.progress : NaN);
      this.o.onAnswer?.(n, ep.id, state, answer.status === 'ok' ? answer.progress : NaN);
    });
    this.waiters.add(done);
    void done.finally(() => this.waiters.delete(done));
  }

  /** Records step t of the rollout (after the vector env stepped). */
  step(data: StepData): void {
    const { numEnvs, stride } = this.o;
    if (this.t >= this.o.numSteps) throw new Error('rollout rewards: the rollout is full; call finish()');
    for (let n = 0; n < numEnvs; n++) {
      const k = this.t * numEnvs + n;
      const ep = this.current[n]!;
      const prev = ep.potentials.states - 1;
      const terminated = data.terminated[n]! !== 0;
      const truncated = data.truncated[n]! !== 0;
      this.sparse[k] = data.rewards[n]!;
      this.terminated[k] = terminated ? 1 : 0;
      this.truncated[k] = truncated ? 1 : 0;
      if (terminated) {
        this.transitions[k] = { episode: ep, prev, next: -1 };
        this.beginEpisode(n, data);
      } else if (truncated) {
        const next = ep.potentials.push();
        this.transitions[k] = { episode: ep, prev, next };
        this.beginEpisode(n, data);
      } else {
        const next = ep.potentials.push();
        this.transitions[k] = { episode: ep, prev, next };
        if (data.episodeStep[n]! % stride === 0) this.query(n, ep, next, data);
      }
    }
    this.t++;
  }

  /**
   * Waits for outstanding answers (at most `deadlineMs`), fixes the potentials and returns the rollout's
   * rewards [T, N] for the learner (the sparse ones in `sparse` mode).
   */
  async finish(deadlineMs: number): Promise<{ rewards: Float64Array; stats: RolloutRewardStats }> {
    if (this.t !== this.o.numSteps)
      throw new Error(`rollout rewards: ${this.t} of ${this.o.numSteps} steps recorded`);
    const t0 = performance.now();
    if (this.waiters.size > 0) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        Promise.all(this.waiters),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, deadlineMs))),
      ]);
      clearTimeout(timer);
    }
    const waitMs = performance.now() - t0;
    let late = 0;
    const seen = new Set<Episode>();
    for (const tr of this.transitions) {
      if (tr && !seen.has(tr.episode)) {
        seen.add(tr.episode);
        late += tr.episode.pending;
      }
    }
    const { numEnvs, numSteps, shaping } = this.o;
    const rewards = new Float64Array(numSteps * numEnvs);
    let phiSum = 0;
    let phiMin = Infinity;
    let phiMax = -Infinity;
    let shapedSum = 0;
    let sparseSum = 0;
    for (let k = 0; k < rewards.length; k++) {
      const tr = this.transitions[k]!;
      // Fixes every state recorded so far, including the current episodes' latest ones: the next rollout's
      // first transitions reuse those same numbers.
      const phis = tr.episode.potentials.resolve();
      const phi = phis[tr.prev]!;
      const phiNext = tr.next < 0 ? 0 : phis[tr.next]!;
      const r = this.sparse[k]!;
      rewards[k] =
        shaping.mode === 'sparse' || !this.usesModel
          ? r
          : shapedReward(shaping, r, phi, phiNext, this.terminated[k] === 1, this.truncated[k] === 1);
      phiSum += phi;
      phiMin = Math.min(phiMin, phi);
      phiMax = Math.max(phiMax, phi);
      shapedSum += rewards[k]!;
      sparseSum += r;
    }
    const stats: RolloutRewardStats = {
      ...this.counts,
      late,
      waitMs,
      phi: { mean: phiSum / rewards.length, min: phiMin, max: phiMax },
      shapedMean: shapedSum / rewards.length,
      sparseMean: sparseSum / rewards.length,
    };
    // The next rollout starts with the current episodes; finished ones are dropped with this rollout's records.
    this.transitions.fill(undefined);
    this.t = 0;
    this.counts = { queried: 0, answered: 0, missing: 0 };
    return { rewards, stats };
  }
}
