/**
 * A trained PpoLearner as a deployable ONNX policy (signature and metadata: docs/onnx-policy.md): raw observation
 * in, the actor's mean action out, with the learner's observation normalisation folded into the graph.
 *
 * Actions are clipped to the action space by default ([-1, 1], every env of ours): the envs clip what they are
 * sent anyway, so the clip changes nothing an env sees, and a rig or tool that runs the file gets commands that
 * are always in range. Compared with `learner.predict(obs, B, { deterministic: true })`, the output is that mean
 * clipped to the bounds (identical wherever the mean is inside them; equal to predict with `actionBounds: null`).
 */
import { exportPolicyOnnx, type MlpLayer, type PolicyExportSpec } from '../onnx/index.ts';
import { InvalidArgument } from '../sim/errors.ts';
import type { PpoLearner } from './ppo.ts';

export interface ExportLearnerOptions {
  /** Extra metadata_props (env id, seed, step, run id...); must not reuse a key the exporter writes. */
  metadata?: Record<string, string>;
  /** [obs_dim] names of the observation entries, stored as the JSON array `obs_names`. */
  obsNames?: readonly string[];
  /** [act_dim] names of the action entries, stored as the JSON array `act_names`. */
  actNames?: readonly string[];
  /** Bounds the action is clipped to: default [-1, 1]; null leaves the mean unclipped. */
  actionBounds?: { low: number | ArrayLike<number>; high: number | ArrayLike<number> } | null;
  /**
   * The learner acts in [-1, 1] and the file should output `low + (a + 1) / 2 * (high - low)` (a rig's own
   * units). Folded into the last layer's weights; the output is clipped to [low, high] unless `actionBounds`
   * says otherwise.
   */
  actionScale?: { low: ArrayLike<number>; high: ArrayLike<number> };
}

/** The export spec of the learner's current actor and observation statistics (copies, safe to keep). */
export function learnerPolicySpec(learner: PpoLearner, options: ExportLearnerOptions = {}): PolicyExportSpec {
  const { obsDim, actDim } = learner;
  const actor = learner.model.actor;
  const last = actor.layers.length - 1;
  const layers: MlpLayer[] = actor.layers.map((layer, i) => ({
    W: layer.W.slice(),
    b: layer.b.slice(),
    activation: i === last ? 'none' : actor.activation,
  }));
  const scale = options.actionScale;
  if (scale) {
    if (scale.low.length !== actDim || scale.high.length !== actDim) {
      throw new InvalidArgument('actionScale', `low and high need ${actDim} values each`);
    }
    // a_raw = c + s * a with s = (high - low) / 2, c = (high + low) / 2: row o of W and b[o] times s[o], plus c[o].
    const out = layers[last]!;
    const W = out.W as Float32Array;
    const b = out.b as Float32Array;
    const nIn = W.length / actDim;
    for (let o = 0; o < actDim; o++) {
      const s = (scale.high[o]! - scale.low[o]!) / 2;
      const c = (scale.high[o]! + scale.low[o]!) / 2;
      for (let i = 0; i < nIn; i++) W[o * nIn + i] = W[o * nIn + i]! * s;
      b[o] = b[o]! * s + c;
    }
  }
  const norm = learner.obsNorm;
  let obsMean: Float64Array;
  let obsStd: Float64Array;
  let obsClip: number;
  if (learner.config.normObs) {
    obsMean = norm.rms.mean.slice();
    // sqrt(var + eps) in float64 and rounded once, as the learner computes it, rather than from a float32 var.
    obsStd = norm.rms.var.map((v) => Math.sqrt(v + norm.eps));
    obsClip = norm.clip;
  } else {
    obsMean = new Float64Array(obsDim);
    obsStd = new Float64Array(obsDim).fill(1);
    obsClip = Infinity;
  }
  const metadata: Record<string, string> = { ...options.metadata };
  const names = (field: 'obsNames' | 'actNames', key: string, n: number): void => {
    const list = options[field];
    if (list === undefined) return;
    if (list.length !== n || !list.every((s) => typeof s === 'string')) {
      throw new InvalidArgument(field, `expected ${n} strings, got ${list.length} entries`);
    }
    if (key in metadata) throw new InvalidArgument(`metadata.${key}`, `is written from ${field}`);
    metadata[key] = JSON.stringify(list);
  };
  names('obsNames', 'obs_names', obsDim);
  names('actNames', 'act_names', actDim);
  // The graph gives the mean only; the Gaussian's spread travels as metadata so that a tool can act as the
  // learner did (`pbridge demos --policy` samples with it), in the file's action units.
  if ('action_std' in metadata)
    throw new InvalidArgument('metadata.action_std', 'is written from the learner');
  const std = Array.from(learner.model.logStd, (l, o) => {
    const s = scale ? (scale.high[o]! - scale.low[o]!) / 2 : 1;
    return Number((Math.exp(l) * Math.abs(s)).toPrecision(6));
  });
  metadata.action_std = JSON.stringify(std);
  const bounds =
    options.actionBounds !== undefined
      ? options.actionBounds
      : scale
        ? { low: scale.low, high: scale.high }
        : { low: -1, high: 1 };
  return {
    obsDim,
    actDim,
    layers,
    obsMean,
    obsStd,
    obsClip,
    ...(bounds ? { actionLow: bounds.low, actionHigh: bounds.high } : {}),
    metadata,
  };
}

/** Writes the learner's policy to `path` as ONNX, atomically. */
export async function exportLearnerPolicy(
  learner: PpoLearner,
  path: string,
  options: ExportLearnerOptions = {},
): Promise<void> {
  await exportPolicyOnnx(learnerPolicySpec(learner, options), path);
}
