/**
 * What the rig trainer hands PPO, checked against transitions laid out by hand, and the learner's detached
 * sampling path checked against its lock-step path.
 */
import { describe, expect, it } from 'vitest';
import { PpoLearner, type DetachedSample } from '../src/learn/ppo.ts';
import type { RigRewardEvent, RigStepEvent } from '../src/bridge/rig/host.ts';
import { LEARNER_POLICY_NAME, RigTransitionCollector } from '../src/train/rig/collector.ts';
import { checkRigTrainConfig, defaultRigTrainConfig } from '../src/train/rig/trainer.ts';
import { Rng } from '../src/env/rng.ts';

/** Sample of state k: obs k + 0.5, action k, log-prob -k, value k (so every row says where it came from). */
function sample(k: number): DetachedSample {
  return { obs: Float32Array.of(k + 0.5), action: Float32Array.of(k), logProb: -k, value: k };
}

function step(
  rig: string,
  episode: number,
  k: number,
  proprio: number,
  over: Partial<RigStepEvent> = {},
): RigStepEvent {
  return {
    rig,
    episode,
    step: k,
    proprio: Float32Array.of(proprio),
    action: Float32Array.of(k),
    policy: LEARNER_POLICY_NAME,
    late: false,
    held: false,
    intervention: false,
    ...over,
  };
}

function reward(
  rig: string,
  episode: number,
  k: number,
  shaped: number,
  over: Partial<RigRewardEvent> = {},
): RigRewardEvent {
  return {
    rig,
    episode,
    step: k,
    phi: k / 10,
    answered: true,
    reward: 0,
    shaped,
    terminated: false,
    truncated: false,
    ...over,
  };
}

describe('RigTransitionCollector', () => {
  it('keeps on-policy transitions, cuts at gaps and rollout edges, and bootstraps truncations by hand', () => {
    const c = new RigTransitionCollector(1, 1);
    // Rig a, episode 3: states 0..4. The human took over for transition 1 (flag on state 2); state 4 is a
    // success. Rig b, episode 7: states 0..3. State 0's action came late (transition 0 not the policy's);
    // the rig disconnected at state 3 (truncated). Proprio: a's state k is k, b's is 10 + k.
    for (let k = 0; k <= 4; k++) {
      c.sampled({ rig: 'a', episode: 3, step: k }, sample(k));
      c.stepped(step('a', 3, k, k, { intervention: k === 2 }));
      if (k <= 3) {
        c.sampled({ rig: 'b', episode: 7, step: k }, sample(k));
        c.stepped(step('b', 7, k, 10 + k, { late: k === 0 }));
      }
    }
    // Reward lines settle later, in order per rig; shaped reward into a's state k is k/10, into b's -k/10.
    for (let k = 0; k <= 4; k++) {
      c.rewarded(reward('a', 3, k, k / 10, k === 4 ? { terminated: true, reward: 1 } : {}));
      if (k <= 3) c.rewarded(reward('b', 7, k, -k / 10, k === 3 ? { truncated: true } : {}));
    }
    expect(c.counts()).toEqual({ ready: 5, skipped: 2, stale: 0 });
    expect(c.take(6, () => new Float32Array(0))).toBeUndefined();

    const bootstraps: number[][] = [];
    const taken = c.take(5, (obs, n) => {
      bootstraps.push(Array.from(obs));
      // A critic we can compute by hand: 100 x the raw observation.
      return Float32Array.from(obs, (v) => 100 * v).subarray(0, n);
    })!;
    // Rows: a 0->1 (cut: a's next kept transition starts at 2), a 2->3, a 3->4 (terminated),
    //       b 1->2, b 2->3 (truncated by the disconnect).
    expect(Array.from(taken.rows.logProbs)).toEqual([-0, -2, -3, -1, -2]);
    expect(Array.from(taken.rows.obs)).toEqual([0.5, 2.5, 3.5, 1.5, 2.5]);
    expect(Array.from(taken.rows.actions)).toEqual([0, 2, 3, 1, 2]);
    expect(Array.from(taken.rows.values)).toEqual([0, 2, 3, 1, 2]);
    expect(Array.from(taken.rows.terminated)).toEqual([0, 0, 1, 0, 0]);
    expect(Array.from(taken.rows.truncated)).toEqual([1, 0, 0, 0, 1]);
    // The cut bootstraps from a's state 1 (raw 1), the truncation from b's state 3 (raw 13).
    expect(bootstraps).toEqual([[1, 13]]);
    expect(Array.from(taken.rows.finalValues)).toEqual([100, 0, 0, 0, 1300]);
    expect(Array.from(taken.rewards).map((r) => +r.toFixed(6))).toEqual([0.1, 0.3, 0.4, -0.2, -0.3]);
    expect(taken.stats.perRig).toEqual({ a: 3, b: 2 });
    expect(taken.stats.segments).toBe(3);
    expect(c.counts()).toEqual({ ready: 0, skipped: 2, stale: 0 });
  });

  it('cuts an episode that goes on past the rollout and continues it in the next one', () => {
    const c = new RigTransitionCollector(1, 1);
    for (let k = 0; k <= 4; k++) {
      c.sampled({ rig: 'r', episode: 0, step: k }, sample(k));
      c.stepped(step('r', 0, k, k));
    }
    for (let k = 0; k <= 3; k++) c.rewarded(reward('r', 0, k, 1));
    const first = c.take(2, (obs) => Float32Array.from(obs, (v) => -v))!;
    expect(Array.from(first.rows.truncated)).toEqual([0, 1]);
    expect(Array.from(first.rows.finalValues)).toEqual([0, -2]);
    const second = c.take(1, (obs) => Float32Array.from(obs, (v) => -v))!;
    expect(Array.from(second.rows.logProbs)).toEqual([-2]);
    expect(Array.from(second.rows.finalValues)).toEqual([-3]);
  });

  it('drops transitions sampled by a policy more than one update old, and cuts where they were', () => {
    const c = new RigTransitionCollector(1, 1);
    // States 0..3 sampled by policy version 0, 4..6 by version 2 (two updates happened in between).
    for (let k = 0; k <= 6; k++) {
      c.sampled({ rig: 'r', episode: 0, step: k }, sample(k), k <= 3 ? 0 : 2);
      c.stepped(step('r', 0, k, k));
    }
    for (let k = 0; k <= 6; k++) c.rewarded(reward('r', 0, k, 0));
    // Transitions 0..3 (version 0) and 4..5 (version 2) are ready; with the learner at 3, version 0 is stale.
    expect(c.take(3, (o) => o, 2)).toBeUndefined();
    expect(c.counts()).toEqual({ ready: 2, skipped: 0, stale: 4 });
    const taken = c.take(2, (o) => Float32Array.from(o, (v) => -v), 2)!;
    expect(Array.from(taken.rows.logProbs)).toEqual([-4, -5]);
    // The episode goes on past state 6: the last row is cut and bootstrapped from state 6.
    expect(Array.from(taken.rows.truncated)).toEqual([0, 1]);
    expect(Array.from(taken.rows.finalValues)).toEqual([0, -6]);
  });

  it('leaves out answers that were not the learner sample: fallback actions and held commands', () => {
    const c = new RigTransitionCollector(1, 1);
    for (let k = 0; k <= 3; k++) {
      c.sampled({ rig: 'r', episode: 1, step: k }, sample(k));
      c.stepped(
        step('r', 1, k, k, {
          policy: k === 0 ? 'zero (policy failed: boom)' : LEARNER_POLICY_NAME,
          held: k === 2,
        }),
      );
    }
    for (let k = 0; k <= 3; k++) c.rewarded(reward('r', 1, k, 0, k === 3 ? { truncated: true } : {}));
    // Transition 0 was the fallback's, transition 1 was held (flag on state 2); only 2 -> 3 remains.
    expect(c.counts()).toEqual({ ready: 1, skipped: 2, stale: 0 });
    expect(Array.from(c.take(1, (o) => o)!.rows.logProbs)).toEqual([-2]);
  });
});

describe('PpoLearner detached sampling', () => {
  it('sampleOne + loadRollout updates exactly as act + observe do', () => {
    const make = (): PpoLearner =>
      new PpoLearner({
        obsDim: 3,
        actDim: 2,
        numEnvs: 1,
        seed: 11,
        config: { numSteps: 16, numMinibatches: 4, updateEpochs: 3 },
        deferredRewards: true,
      });
    const lockstep = make();
    const detached = make();
    const rng = new Rng(5);
    const T = 16;
    const rows = {
      obs: new Float32Array(T * 3),
      actions: new Float32Array(T * 2),
      logProbs: new Float32Array(T),
      values: new Float32Array(T),
      terminated: new Uint8Array(T),
      truncated: new Uint8Array(T),
      finalValues: new Float32Array(T),
    };
    const rewards = new Float64Array(T);
    for (let t = 0; t < T; t++) {
      const obs = Float32Array.from({ length: 3 }, () => rng.normal() * 2 + 1);
      const a = lockstep.act(obs);
      const s = detached.sampleOne(obs);
      expect(Array.from(s.action)).toEqual(Array.from(a.actions));
      const terminated = t === 5 ? 1 : 0;
      const truncated = t === 9 ? 1 : 0;
      const finalObs = Float32Array.from({ length: 3 }, () => rng.normal());
      lockstep.observe({ terminated: [terminated], truncated: [truncated], finalObs });
      rows.obs.set(s.obs, t * 3);
      rows.actions.set(s.action, t * 2);
      rows.logProbs[t] = s.logProb;
      rows.values[t] = s.value;
      rows.terminated[t] = terminated;
      rows.truncated[t] = truncated;
      if (truncated) rows.finalValues[t] = detached.valuesOf(finalObs, 1)[0]!;
      rewards[t] = rng.normal();
    }
    detached.loadRollout(rows);
    const next = Float32Array.of(0.3, -0.2, 1.1);
    lockstep.setRolloutRewards(rewards);
    detached.setRolloutRewards(rewards);
    const u1 = lockstep.update(next);
    const u2 = detached.update(next);
    expect(u2).toEqual(u1);
    expect(Array.from(detached.model.params)).toEqual(Array.from(lockstep.model.params));
  });

  it('refuses a rollout of the wrong size or with non-finite values, naming the field', () => {
    const learner = new PpoLearner({
      obsDim: 2,
      actDim: 1,
      numEnvs: 1,
      seed: 0,
      config: { numSteps: 4, numMinibatches: 2 },
      deferredRewards: true,
    });
    const ok = {
      obs: new Float32Array(8),
      actions: new Float32Array(4),
      logProbs: new Float32Array(4),
      values: new Float32Array(4),
      terminated: new Uint8Array(4),
      truncated: new Uint8Array(4),
      finalValues: new Float32Array(4),
    };
    expect(() => learner.loadRollout({ ...ok, obs: new Float32Array(6) })).toThrow(
      /rollout\.obs.*expected 8/,
    );
    expect(() => learner.loadRollout({ ...ok, values: Float32Array.of(0, NaN, 0, 0) })).toThrow(
      /rollout\.values.*finite/,
    );
    learner.loadRollout(ok);
    expect(learner.step).toBe(4);
  });
});

describe('rig training config', () => {
  it('refuses bad options with errors that name the option and the limit', () => {
    const bad =
      (over: Parameters<typeof defaultRigTrainConfig>[0]): (() => void) =>
      () =>
        checkRigTrainConfig(defaultRigTrainConfig({ rigs: ['arm-1'], ...over }));
    expect(bad({ rigs: [] })).toThrow(/--rig.*at least one rig/);
    expect(bad({ rigs: ['arm 1'] })).toThrow(/--rig.*\[A-Za-z0-9._-\].*"arm 1"/);
    expect(bad({ rolloutSteps: 4 })).toThrow(/rollout.*\[8, 1000000\], got 4/);
    expect(bad({ rolloutSteps: 100 })).toThrow(/rollout.*multiple of the 8 minibatches, got 100/);
    expect(bad({ steps: 0 })).toThrow(/steps.*\[1, 10000000000\], got 0/);
    expect(() => checkRigTrainConfig(defaultRigTrainConfig({ rigs: ['arm-1'] }))).not.toThrow();
  });
});
