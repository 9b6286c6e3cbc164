/**
 * The PPO loss of one minibatch (CleanRL's `ppo_continuous_action.py`) and its gradients w.r.t. the network
 * outputs (action mean, log-std, value), which the caller backpropagates through the actor and critic:
 *
 *   ratio      = exp(logp_new - logp_old)
 *   policyLoss = mean(max(-A * ratio, -A * clip(ratio, 1 - c, 1 + c)))
 *   valueLoss  = 0.5 * mean(max((v - R)^2, (v_old + clip(v - v_old, -c, c) - R)^2))   (clipVloss)
 *              = 0.5 * mean((v - R)^2)                                                 (otherwise)
 *   loss       = policyLoss - entCoef * entropy + vfCoef * valueLoss
 *
 * A is the advantage, normalised over the minibatch when `normAdv` (mean 0, unbiased std 1, + 1e-8 as CleanRL).
 */
import { addGaussianLogProbGrad, gaussianEntropy, gaussianLogProb } from './policy.ts';

type Floats = Float32Array | Float64Array;

export interface PpoLossCoefs {
  /** Surrogate clipping range c (also the value clipping range). */
  clipCoef: number;
  /** Clip the value loss around the old values. */
  clipVloss: boolean;
  /** Weight of the entropy bonus. */
  entCoef: number;
  /** Weight of the value loss. */
  vfCoef: number;
  /** Normalise advantages over the minibatch. */
  normAdv: boolean;
}

/** One minibatch of B samples with action dimension A. */
export interface PpoLossInput {
  B: number;
  A: number;
  /** [B, A] action means of the current policy. */
  mean: Floats;
  /** [A] current log-std. */
  logStd: Floats;
  /** [B] values of the current critic. */
  value: Floats;
  /** [B, A] actions taken (unclipped samples). */
  actions: Floats;
  /** [B] log-probs of the actions under the policy that collected them. */
  oldLogProb: Floats;
  /** [B] critic values at collection time. */
  oldValue: Floats;
  /** [B] advantages (normalised here when `normAdv`). */
  advantages: Floats;
  /** [B] value targets. */
  returns: Floats;
}

export interface PpoLossResult {
  /** policyLoss - entCoef * entropy + vfCoef * valueLoss. */
  loss: number;
  policyLoss: number;
  valueLoss: number;
  /** Mean entropy of the action distribution. */
  entropy: number;
  /** mean((ratio - 1) - log ratio): a low-variance, non-negative KL(old || new) estimate (Schulman's k3). */
  approxKl: number;
  /** mean(-log ratio): the older, higher-variance estimate, kept for comparison with CleanRL logs. */
  oldApproxKl: number;
  /** Fraction of samples with |ratio - 1| > clipCoef. */
  clipFrac: number;
}

/** Gradients of `loss` w.r.t. the outputs; preallocated by the caller, overwritten. */
export interface PpoLossGrads {
  /** [B, A] */
  dMean: Floats;
  /** [A] */
  dLogStd: Floats;
  /** [B] */
  dValue: Floats;
  /** [B] scratch for the new log-probs. */
  logProb: Floats;
}

/** Preallocated gradient buffers for minibatches of B samples. */
export function ppoLossGrads(B: number, A: number): PpoLossGrads {
  return {
    dMean: new Float32Array(B * A),
    dLogStd: new Float32Array(A),
    dValue: new Float32Array(B),
    logProb: new Float32Array(B),
  };
}

/** Computes the loss of one minibatch and writes its gradients into `grads`. */
export function ppoLoss(input: PpoLossInput, coefs: PpoLossCoefs, grads: PpoLossGrads): PpoLossResult {
  const { B, A, mean, logStd, value, actions, oldLogProb, oldValue, advantages, returns } = input;
  const { clipCoef: c, clipVloss, entCoef, vfCoef, normAdv } = coefs;
  const { dMean, dLogStd, dValue, logProb } = grads;
  dMean.fill(0);
  dLogStd.fill(0);

  let advMean = 0;
  let advScale = 1;
  if (normAdv) {
    for (let i = 0; i < B; i++) advMean += advantages[i]!;
    advMean /= B;
    let ss = 0;
    for (let i = 0; i < B; i++) ss += (advantages[i]! - advMean) ** 2;
    // torch.std is the unbiased estimate; a minibatch of one has none, and then only the centring applies.
    const std = B > 1 ? Math.sqrt(ss / (B - 1)) : 0;
    advScale = 1 / (std + 1e-8);
  }

  gaussianLogProb(actions, mean, logStd, B, A, logProb);
  let policyLoss = 0;
  let approxKl = 0;
  let oldApproxKl = 0;
  let clipped = 0;
  for (let i = 0; i < B; i++) {
    const logRatio = logProb[i]! - oldLogProb[i]!;
    const ratio = Math.exp(logRatio);
    oldApproxKl += -logRatio;
    approxKl += ratio - 1 - logRatio;
    if (Math.abs(ratio - 1) > c) clipped++;
    const adv = normAdv ? (advantages[i]! - advMean) * advScale : advantages[i]!;
    const l1 = -adv * ratio;
    const l2 = -adv * (ratio < 1 - c ? 1 - c : ratio > 1 + c ? 1 + c : ratio);
    // Where the clipped term is the larger one the ratio is outside the range: that term is flat in the ratio.
    const dRatio = l1 >= l2 ? -adv : 0;
    policyLoss += Math.max(l1, l2);
    if (dRatio !== 0)
      addGaussianLogProbGrad(actions, mean, logStd, i * A, A, (dRatio * ratio) / B, dMean, dLogStd);
  }
  policyLoss /= B;

  let valueLoss = 0;
  for (let i = 0; i < B; i++) {
    const v = value[i]!;
    const R = returns[i]!;
    const unclipped = (v - R) * (v - R);
    if (clipVloss) {
      const dv = v - oldValue[i]!;
      const inside = dv > -c && dv < c;
      const vClipped = oldValue[i]! + (inside ? dv : dv < 0 ? -c : c);
      const clippedLoss = (vClipped - R) * (vClipped - R);
      if (unclipped >= clippedLoss) {
        valueLoss += unclipped;
        dValue[i] = (vfCoef * (v - R)) / B;
      } else {
        valueLoss += clippedLoss;
        dValue[i] = inside ? (vfCoef * (vClipped - R)) / B : 0;
      }
    } else {
      valueLoss += unclipped;
      dValue[i] = (vfCoef * (v - R)) / B;
    }
  }
  valueLoss *= 0.5 / B;

  const entropy = gaussianEntropy(logStd);
  for (let j = 0; j < A; j++) dLogStd[j] = dLogStd[j]! - entCoef;

  return {
    loss: policyLoss - entCoef * entropy + vfCoef * valueLoss,
    policyLoss,
    valueLoss,
    entropy,
    approxKl: approxKl / B,
    oldApproxKl: oldApproxKl / B,
    clipFrac: clipped / B,
  };
}
