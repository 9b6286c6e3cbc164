/**
 * PPO loss. Proves: losses, KL estimates and clip fraction equal hand-worked numbers (clipped and unclipped
 * branches of both the surrogate and the value loss, with and without advantage normalisation); the output
 * gradients are the hand-worked ones; and the gradient of the full loss w.r.t. every network parameter (actor,
 * log-std, critic, through ppoLoss and backprop) matches central finite differences.
 */
import { describe, expect, it } from 'vitest';
import { Rng } from '../src/env/rng.ts';
import { ActorCritic, gaussianLogProb } from '../src/learn/policy.ts';
import { ppoLoss, ppoLossGrads, type PpoLossCoefs, type PpoLossInput } from '../src/learn/ppo-loss.ts';

const HALF_LOG_2PI = 0.5 * Math.log(2 * Math.PI);

/**
 * Two samples, one action dim, logStd 0, mean 0, actions (0, 0.5). The new log-probs are
 *   lp1 = -0.918939, lp2 = -0.125 - 0.918939;
 * old log-probs are set so that ratio1 = 1.5 and ratio2 = 0.9.
 */
function handCase(): PpoLossInput {
  const lp1 = -HALF_LOG_2PI;
  const lp2 = -0.125 - HALF_LOG_2PI;
  return {
    B: 2,
    A: 1,
    mean: Float64Array.of(0, 0),
    logStd: Float64Array.of(0),
    value: Float64Array.of(1, 0),
    actions: Float64Array.of(0, 0.5),
    oldLogProb: Float64Array.of(lp1 - Math.log(1.5), lp2 - Math.log(0.9)),
    oldValue: Float64Array.of(0.5, 0.1),
    advantages: Float64Array.of(1, -1),
    returns: Float64Array.of(2, -1),
  };
}

const coefs: PpoLossCoefs = { clipCoef: 0.2, clipVloss: true, entCoef: 0.01, vfCoef: 0.5, normAdv: false };

describe('ppoLoss on hand-worked numbers', () => {
  it('clipped surrogate, clipped value loss, entropy, KL and clip fraction', () => {
    // Surrogate, c = 0.2:
    //   s1: A = 1,  r = 1.5: -A r = -1.5, -A clip(r) = -1.2, max = -1.2 (clipped: flat in r)
    //   s2: A = -1, r = 0.9: -A r = 0.9,  -A clip(r) = 0.9,  max = 0.9
    //   policyLoss = (-1.2 + 0.9) / 2 = -0.15
    // Value, c = 0.2:
    //   s1: (1 - 2)^2 = 1; v - v_old = 0.5 -> clipped 0.2, v_clip = 0.7, (0.7 - 2)^2 = 1.69; max = 1.69
    //   s2: (0 + 1)^2 = 1; v - v_old = -0.1 inside, v_clip = 0, (0 + 1)^2 = 1; max = 1
    //   valueLoss = 0.5 * (1.69 + 1) / 2 = 0.6725
    // Entropy (logStd 0) = 0.5 + 0.918939 = 1.418939
    // loss = -0.15 - 0.01 * 1.418939 + 0.5 * 0.6725 = 0.172061
    // approxKl = mean((r - 1) - ln r) = ((0.5 - 0.405465) + (-0.1 + 0.105361)) / 2 = 0.049948
    // oldApproxKl = mean(-ln r) = (-0.405465 + 0.105361) / 2 = -0.150052
    // clipFrac: |0.5| > 0.2, |0.1| not -> 0.5
    const grads = ppoLossGrads(2, 1);
    const res = ppoLoss(handCase(), coefs, grads);
    expect(res.policyLoss).toBeCloseTo(-0.15, 6);
    expect(res.valueLoss).toBeCloseTo(0.6725, 6);
    expect(res.entropy).toBeCloseTo(1.418939, 6);
    expect(res.loss).toBeCloseTo(0.172061, 6);
    expect(res.approxKl).toBeCloseTo(0.049948, 6);
    expect(res.oldApproxKl).toBeCloseTo(-0.150052, 6);
    expect(res.clipFrac).toBe(0.5);
    // Gradients:
    //   s1 surrogate is clipped -> 0; s1 value takes the clipped branch with the clip active -> 0.
    //   s2 surrogate: dL/dr = -A / B = 0.5, dr/dlogp = r = 0.9 -> dL/dlogp = 0.45;
    //     dlogp/dmean = (a - mean) / std^2 = 0.5 -> dMean2 = 0.225;
    //     dlogp/dlogStd = z^2 - 1 = -0.75 -> -0.3375, plus the entropy bonus -entCoef = -0.01 -> -0.3475.
    //   s2 value: vfCoef * (v - R) / B = 0.5 * 1 / 2 = 0.25.
    expect(Array.from(grads.dMean).map((v) => +v.toFixed(6))).toEqual([0, 0.225]);
    expect(grads.dLogStd[0]).toBeCloseTo(-0.3475, 6);
    expect(Array.from(grads.dValue).map((v) => +v.toFixed(6))).toEqual([0, 0.25]);
  });

  it('unclipped value loss and advantage normalisation', () => {
    // normAdv: mean(A) = 0, unbiased std = sqrt(2) -> A = (0.707107, -0.707107); every surrogate term scales
    // by 1 / sqrt(2): policyLoss = -0.15 / sqrt(2) = -0.106066.
    // Value without clipping: 0.5 * ((1 - 2)^2 + (0 + 1)^2) / 2 = 0.5.
    const grads = ppoLossGrads(2, 1);
    const res = ppoLoss(handCase(), { ...coefs, normAdv: true, clipVloss: false }, grads);
    expect(res.policyLoss).toBeCloseTo(-0.106066, 6);
    expect(res.valueLoss).toBeCloseTo(0.5, 6);
    // dValue = vfCoef * (v - R) / B = (0.5 * -1 / 2, 0.5 * 1 / 2).
    expect(Array.from(grads.dValue)).toEqual([-0.25, 0.25]);
  });

  it('ratio below 1 - c with a negative advantage is clipped too', () => {
    // A = -1, r = 0.5: -A r = 0.5, -A clip(r) = 0.8 -> max = 0.8 and no gradient.
    const input = handCase();
    input.B = 1;
    input.advantages = Float64Array.of(-1);
    input.oldLogProb = Float64Array.of(-HALF_LOG_2PI - Math.log(0.5));
    const grads = ppoLossGrads(1, 1);
    const res = ppoLoss(input, { ...coefs, entCoef: 0 }, grads);
    expect(res.policyLoss).toBeCloseTo(0.8, 6);
    expect(grads.dMean[0]).toBe(0);
    expect(grads.dLogStd[0]).toBe(0);
  });
});

describe('full PPO loss gradient', () => {
  for (const clipVloss of [true, false]) {
    it(`matches finite differences for every parameter (clipVloss ${clipVloss})`, () => {
      const rng = new Rng(clipVloss ? 21 : 22);
      const B = 6;
      const D = 3;
      const A = 2;
      const ac = new ActorCritic({ obsDim: D, actDim: A, actorHidden: [8, 8], criticHidden: [8, 8] });
      ac.init(rng, { actorOutputGain: 1, criticOutputGain: 1 });
      ac.logStd.set([-0.3, 0.2]);
      const obs = Float32Array.from({ length: B * D }, () => rng.normal());
      const actions = Float32Array.from({ length: B * A }, () => rng.normal());
      // Old log-probs and values placed so that ratios and value moves sit well inside or well outside the
      // clip range: a finite-difference step then never crosses a kink of the max/clip.
      const logRatios = [-0.5, -0.1, 0.05, 0.3, 0.4, -0.02];
      const valueMoves = [-0.5, -0.1, 0.1, 0.5, 0.05, -0.35];
      const lp0 = new Float32Array(B);
      gaussianLogProb(actions, ac.mean(obs, B), ac.logStd, B, A, lp0);
      const v0 = ac.value(obs, B);
      const input: Omit<PpoLossInput, 'mean' | 'value' | 'logStd'> = {
        B,
        A,
        actions,
        oldLogProb: Float32Array.from(lp0, (v, i) => v - logRatios[i]!),
        oldValue: Float32Array.from(v0, (v, i) => v - valueMoves[i]!),
        advantages: Float32Array.from({ length: B }, () => rng.normal()),
        returns: Float32Array.from({ length: B }, () => rng.normal()),
      };
      const c: PpoLossCoefs = { clipCoef: 0.2, clipVloss, entCoef: 0.05, vfCoef: 0.5, normAdv: true };
      const grads = ppoLossGrads(B, A);
      const loss = (): number =>
        ppoLoss({ ...input, mean: ac.mean(obs, B), value: ac.value(obs, B), logStd: ac.logStd }, c, grads)
          .loss;

      ac.zeroGrad();
      const res = ppoLoss(
        { ...input, mean: ac.mean(obs, B), value: ac.value(obs, B), logStd: ac.logStd },
        c,
        grads,
      );
      expect(res.clipFrac).toBeGreaterThan(0);
      expect(res.clipFrac).toBeLessThan(1);
      ac.actor.backward(grads.dMean, B);
      ac.critic.backward(grads.dValue, B);
      for (let j = 0; j < A; j++) ac.logStdGrad[j] = ac.logStdGrad[j]! + grads.dLogStd[j]!;
      const analytic = ac.grads.slice();

      // float32 parameters: a step of 1e-2 keeps the rounding noise of the loss (~1e-7) far below the signal.
      const h = 1e-2;
      let worst = 0;
      for (let k = 0; k < ac.params.length; k++) {
        const saved = ac.params[k]!;
        ac.params[k] = saved + h;
        const up = ac.params[k]! - saved;
        const lp = loss();
        ac.params[k] = saved - h;
        const down = saved - ac.params[k]!;
        const lm = loss();
        ac.params[k] = saved;
        const fd = (lp - lm) / (up + down);
        const err = Math.abs(analytic[k]! - fd) / (1e-3 + Math.abs(fd));
        worst = Math.max(worst, err);
      }
      expect(worst).toBeLessThan(5e-3);
    });
  }
});
