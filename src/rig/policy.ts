/**
 * Where a rig's actions come from. The server holds one `RigPolicy` at a time: an ONNX policy file
 * (`pbridge serve --rig-policy x.onnx`), a running learner's current policy (handed over through
 * `RigHost.setPolicy`), or none, in which case rigs get a zero action clipped to their bounds so they can always
 * complete episodes. A policy maps the rig's proprioception vector to one action.
 */
import { loadOnnxPolicy, type OnnxPolicy } from '../onnx/policy.ts';
import type { RigSpec } from '../protocol/index.ts';

/** Which step an action is asked for: a learning policy keys its samples by it. */
export interface RigStepContext {
  rig: string;
  episode: number;
  /** State index in the episode (0-based), as in the store. */
  step: number;
}

export interface RigPolicy {
  /** Shown to rigs in `rig_ready.policy` and stored with every step (`onnx:<path>`, `learner`, ...). */
  readonly name: string;
  /** Proprio entries the policy takes, when it fixes them (checked against a rig's spec at hello). */
  readonly obsDim?: number;
  /** Action entries it outputs, when it fixes them. */
  readonly actDim?: number;
  /** One action for one observation (float32 [obsDim] -> [actDim]). */
  act(obs: Float32Array, ctx?: RigStepContext): Promise<Float32Array> | Float32Array;
  /**
   * Called at a rig's hello before the dimension check: a policy whose dimensions are not fixed yet (a learner
   * created by the first rig) fixes them here; throwing a ProtocolError refuses the rig.
   */
  fit?(spec: RigSpec): void;
  close?(): Promise<void>;
}

/** An ONNX policy with the documented signature (docs/onnx-policy.md) as a rig policy. */
export function onnxRigPolicy(policy: OnnxPolicy): RigPolicy {
  return {
    name: `onnx:${policy.path}`,
    obsDim: policy.obsDim,
    actDim: policy.actDim,
    act: (obs) => policy.run(obs, 1),
    close: () => policy.close(),
  };
}

export async function loadRigPolicy(path: string): Promise<RigPolicy> {
  return onnxRigPolicy(await loadOnnxPolicy(path));
}

/** The action sent when there is no policy: zero, clipped into the rig's bounds (0 may lie outside them). */
export function zeroAction(low: readonly number[], high: readonly number[]): Float32Array {
  return Float32Array.from(low, (l, i) => Math.min(high[i]!, Math.max(l, 0)));
}

/** Clips a policy's action into the bounds in place; non-finite entries become the bounded zero. */
export function clipAction(a: Float32Array, low: readonly number[], high: readonly number[]): Float32Array {
  for (let i = 0; i < a.length; i++) {
    const v = a[i]!;
    const lo = low[i]!;
    const hi = high[i]!;
    a[i] = Number.isFinite(v) ? Math.min(hi, Math.max(lo, v)) : Math.min(hi, Math.max(lo, 0));
  }
  return a;
}
