/**
 * Turns what connected rigs do into PPO transitions. Rigs step on their own clocks, so there is no lock-step
 * [T, N] rollout: each rig's samples (taken when its observation arrived), stored steps and settled rewards come
 * in as events, and a transition (s_k, a_k) -> s_{k+1} is ready once the reward line of s_{k+1} is settled,
 * which is also when it is known whether s_{k+1} ended the episode.
 *
 * Only on-policy transitions are kept: a transition whose action came late (the rig held its previous command),
 * was held, or was replaced by a human's (an intervention) is not what the policy chose, so PPO's ratio would be
 * wrong for it. It stays in the episode store, flagged as such, but the rollout skips it, and the transition
 * before it ends there with a bootstrap from the state it reached, as at any rollout boundary.
 *
 * `take(B)` lays the oldest B ready transitions out as one learner lane: grouped by episode, in step order, and
 * every group ends either where its episode ended (terminated, or truncated with a bootstrap from the final
 * state) or with a cut bootstrapped from the next state, so GAE never runs across episodes or gaps.
 */
import type { DetachedSample, RolloutRows } from '../../learn/ppo.ts';
import type { RigRewardEvent, RigStepEvent } from '../../bridge/rig/host.ts';
import type { RigStepContext } from '../../rig/policy.ts';

/** Policy name the rig host stores for steps the learner answered. */
export const LEARNER_POLICY_NAME = 'learner';

interface StateInfo {
  sample?: DetachedSample;
  /** Updates the learner had done when it took the sample. */
  version?: number;
  proprio?: Float32Array;
  /** The action chosen in this state was not the one executed. */
  offPolicy: boolean;
}

export interface ReadyTransition {
  rig: string;
  episode: number;
  /** State index of s_k. */
  step: number;
  sample: DetachedSample;
  /** Policy version (learner updates done) that sampled the action. */
  version: number;
  /** Shaped reward (what the learner optimises) and the sparse one. */
  shaped: number;
  sparse: number;
  /** Phi(s_{k+1}). */
  phi: number;
  /** The model answered for s_{k+1} (otherwise its Phi was held). */
  answered: boolean;
  terminated: boolean;
  truncated: boolean;
  /** Raw observation of s_{k+1}: the bootstrap of a truncation or a cut. */
  next: Float32Array;
}

export interface CollectorCounts {
  /** Transitions ready and not yet taken. */
  ready: number;
  /** Transitions left out because their action was not the policy's (late, held, intervention, fallback). */
  skipped: number;
  /** Transitions dropped because their policy was more than one update older than the learner's. */
  stale: number;
}

export interface TakenRollout {
  rows: RolloutRows;
  /** [B] shaped rewards, raw (the learner scales them). */
  rewards: Float64Array;
  stats: {
    shapedMean: number;
    sparseMean: number;
    phi: { mean: number; min: number; max: number };
    /** States whose Phi the model answered; the rest held the previous state's Phi. */
    answered: number;
    /** Transitions per rig in this rollout. */
    perRig: Record<string, number>;
    /** Segments the lane was cut into (episode ends, gaps and rollout edges). */
    segments: number;
  };
}

export class RigTransitionCollector {
  private readonly lanes = new Map<string, Map<number, StateInfo>>();
  private readonly ready: ReadyTransition[] = [];
  private skipped = 0;
  private stale = 0;

  constructor(
    readonly obsDim: number,
    readonly actDim: number,
  ) {}

  counts(): CollectorCounts {
    return { ready: this.ready.length, skipped: this.skipped, stale: this.stale };
  }

  /** The learner (after `version` updates) sampled `sample` for this step (before the step was stored). */
  sampled(ctx: RigStepContext, sample: DetachedSample, version = 0): void {
    const state = this.state(ctx.rig, ctx.episode, ctx.step);
    state.sample = sample;
    state.version = version;
    state.offPolicy = false;
  }

  /** The host stored the step. */
  stepped(e: RigStepEvent): void {
    const state = this.state(e.rig, e.episode, e.step);
    state.proprio = e.proprio;
    // A fallback (zero) answer, or an answer from a policy that was swapped in, is not the learner's sample.
    if (e.policy !== LEARNER_POLICY_NAME) delete state.sample;
    if (e.late) state.offPolicy = true;
    if (e.held || e.intervention) {
      const prev = this.lanes.get(laneKey(e.rig, e.episode))?.get(e.step - 1);
      if (prev) prev.offPolicy = true;
    }
  }

  /** The host settled state `e.step`: the transition into it is complete. */
  rewarded(e: RigRewardEvent): void {
    const key = laneKey(e.rig, e.episode);
    const lane = this.lanes.get(key);
    if (!lane) return; // a rig the learner does not train on
    if (e.step > 0) {
      const from = lane.get(e.step - 1);
      const to = lane.get(e.step);
      lane.delete(e.step - 1);
      if (from?.sample && !from.offPolicy && to?.proprio) {
        this.ready.push({
          rig: e.rig,
          episode: e.episode,
          step: e.step - 1,
          sample: from.sample,
          version: from.version ?? 0,
          shaped: e.shaped,
          sparse: e.reward,
          phi: e.phi,
          answered: e.answered,
          terminated: e.terminated,
          truncated: e.truncated,
          next: to.proprio,
        });
      } else if (from) {
        this.skipped++;
      }
    }
    if (e.terminated || e.truncated) this.lanes.delete(key);
  }

  /**
   * The oldest `batch` ready transitions as one learner lane. `valuesOf` gives critic values of raw observations
   * (the bootstraps). Transitions sampled before `minVersion` are dropped first: rigs that produce faster than
   * the learner updates would otherwise feed it ever older actions, whose PPO ratios clip away. Undefined while
   * fewer are ready.
   */
  take(
    batch: number,
    valuesOf: (obs: Float32Array, n: number) => Float32Array,
    minVersion = 0,
  ): TakenRollout | undefined {
    const fresh = this.ready.filter((t) => t.version >= minVersion);
    if (fresh.length < this.ready.length) {
      this.stale += this.ready.length - fresh.length;
      this.ready.splice(0, this.ready.length, ...fresh);
    }
    if (this.ready.length < batch) return undefined;
    const taken = this.ready.splice(0, batch);
    // Group by episode in order of first appearance; within an episode they are already in step order.
    const groups = new Map<string, ReadyTransition[]>();
    for (const t of taken) {
      const key = laneKey(t.rig, t.episode);
      let g = groups.get(key);
      if (!g) groups.set(key, (g = []));
      g.push(t);
    }
    const order = [...groups.values()].flat();
    const D = this.obsDim;
    const A = this.actDim;
    const rows: RolloutRows = {
      obs: new Float32Array(batch * D),
      actions: new Float32Array(batch * A),
      logProbs: new Float32Array(batch),
      values: new Float32Array(batch),
      terminated: new Uint8Array(batch),
      truncated: new Uint8Array(batch),
      finalValues: new Float32Array(batch),
    };
    const rewards = new Float64Array(batch);
    const bootstrapAt: number[] = [];
    const perRig: Record<string, number> = {};
    let phiSum = 0;
    let phiMin = Infinity;
    let phiMax = -Infinity;
    let shapedSum = 0;
    let sparseSum = 0;
    let segments = 0;
    let answered = 0;
    for (let i = 0; i < batch; i++) {
      const t = order[i]!;
      const next = order[i + 1];
      rows.obs.set(t.sample.obs, i * D);
      rows.actions.set(t.sample.action, i * A);
      rows.logProbs[i] = t.sample.logProb;
      rows.values[i] = t.sample.value;
      rows.terminated[i] = t.terminated ? 1 : 0;
      const continues =
        next !== undefined && next.rig === t.rig && next.episode === t.episode && next.step === t.step + 1;
      const cut = !t.terminated && !t.truncated && !continues;
      rows.truncated[i] = t.truncated || cut ? 1 : 0;
      if (!t.terminated && (t.truncated || cut)) bootstrapAt.push(i);
      if (t.terminated || t.truncated || cut) segments++;
      rewards[i] = t.shaped;
      perRig[t.rig] = (perRig[t.rig] ?? 0) + 1;
      phiSum += t.phi;
      phiMin = Math.min(phiMin, t.phi);
      phiMax = Math.max(phiMax, t.phi);
      shapedSum += t.shaped;
      sparseSum += t.sparse;
      if (t.answered) answered++;
    }
    if (bootstrapAt.length > 0) {
      const nexts = new Float32Array(bootstrapAt.length * D);
      bootstrapAt.forEach((i, j) => nexts.set(order[i]!.next, j * D));
      const values = valuesOf(nexts, bootstrapAt.length);
      bootstrapAt.forEach((i, j) => (rows.finalValues[i] = values[j]!));
    }
    return {
      rows,
      rewards,
      stats: {
        shapedMean: shapedSum / batch,
        sparseMean: sparseSum / batch,
        phi: { mean: phiSum / batch, min: phiMin, max: phiMax },
        answered,
        perRig,
        segments,
      },
    };
  }

  private state(rig: string, episode: number, step: number): StateInfo {
    const key = laneKey(rig, episode);
    let lane = this.lanes.get(key);
    if (!lane) this.lanes.set(key, (lane = new Map()));
    let s = lane.get(step);
    if (!s) lane.set(step, (s = { offPolicy: false }));
    return s;
  }
}

function laneKey(rig: string, episode: number): string {
  return `${rig}\u0000${episode}`;
}
