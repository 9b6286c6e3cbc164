/**
 * The deployable form of a trained MLP Gaussian policy: one ONNX file that maps raw observations to the mean
 * action, with observation normalisation inside the graph so no caller (Python, a robot, the browser) has to
 * reimplement it. Signature and metadata keys: docs/onnx-policy.md.
 */
import { readFile } from 'node:fs/promises';
import * as ort from 'onnxruntime-node';
import {
  FileNotFoundError,
  InvalidArgument,
  InvalidOnnxModel,
  OnnxSignatureMismatch,
} from '../sim/errors.ts';
import { atomicWriteFile } from '../util/atomic-write.ts';
import { GraphBuilder } from './builder.ts';
import type { AttributeValue } from './model.ts';
import { parseOnnxMetadata, type OnnxModelInfo } from './reader.ts';

export const POLICY_INPUT = 'obs';
export const POLICY_OUTPUT = 'action';
/** Value of the `pbridge.format` metadata key; bump when the signature or the meaning of a key changes. */
export const POLICY_FORMAT = 'mlp-gaussian-policy/1';

/** One affine layer `y = act(W x + b)`. */
export interface MlpLayer {
  /** Row-major [out, in], the layout of torch.nn.Linear.weight. */
  W: ArrayLike<number>;
  /** [out] */
  b: ArrayLike<number>;
  activation: 'tanh' | 'none';
}

export interface PolicyExportSpec {
  obsDim: number;
  actDim: number;
  /** In order from the observation; the last one outputs [act_dim] (usually with activation 'none'). */
  layers: MlpLayer[];
  /** [obs_dim] running mean of raw observations. */
  obsMean: ArrayLike<number>;
  /** [obs_dim] standard deviation; give this or `obsVar`. */
  obsStd?: ArrayLike<number>;
  /** [obs_dim] variance; the graph then divides by sqrt(obsVar + obsEps). */
  obsVar?: ArrayLike<number>;
  /** Added to `obsVar` before the square root (default 1e-8). */
  obsEps?: number;
  /** Normalised observations are clipped to [-obsClip, obsClip]; Infinity for no clip. */
  obsClip: number;
  /** Optional final clip of the action, per dimension or one value for all. Give both or neither. */
  actionLow?: number | ArrayLike<number>;
  actionHigh?: number | ArrayLike<number>;
  /** Extra metadata_props (env id, seed, step, git commit...). Must not reuse a key the exporter writes. */
  metadata?: Record<string, string>;
}

/**
 * The graph as bytes: obs -> Sub(mean) -> Div(std) -> Clip(+-obsClip) -> [Gemm (-> Tanh)]* -> [Max(low), Min(high)]
 * -> action. Gemm with transB=1 takes W in its stored [out, in] layout, so nothing is transposed on export.
 */
export function buildPolicyOnnx(spec: PolicyExportSpec): Uint8Array {
  const { obsDim, actDim } = spec;
  checkDim('obsDim', obsDim);
  checkDim('actDim', actDim);
  const mean = floats('obsMean', spec.obsMean, obsDim);
  const std = obsStd(spec);
  if (!(spec.obsClip > 0))
    throw new InvalidArgument('obsClip', `must be > 0 (Infinity for no clip), got ${spec.obsClip}`);
  if (spec.layers.length === 0) throw new InvalidArgument('layers', 'needs at least one layer');

  const g = new GraphBuilder('policy');
  g.addInput(POLICY_INPUT, 'float32', ['B', obsDim]);
  g.addOutput(POLICY_OUTPUT, 'float32', ['B', actDim]);

  // Each step is emitted once the next one is known, so the last node can be named `action` directly.
  type Step = { op: string; consts: string[]; attributes?: Record<string, AttributeValue> };
  const steps: Step[] = [];
  steps.push({ op: 'Sub', consts: [g.addInitializer('obs_mean', mean, [obsDim])] });
  steps.push({ op: 'Div', consts: [g.addInitializer('obs_std', std, [obsDim])] });
  if (Number.isFinite(spec.obsClip)) {
    const lo = g.addInitializer('obs_clip_min', [-spec.obsClip], []);
    const hi = g.addInitializer('obs_clip_max', [spec.obsClip], []);
    steps.push({ op: 'Clip', consts: [lo, hi] });
  }
  let inDim = obsDim;
  spec.layers.forEach((layer, i) => {
    const outDim = layer.b.length;
    checkDim(`layers[${i}].b.length`, outDim);
    const W = floats(`layers[${i}].W`, layer.W, outDim * inDim, `[${outDim}, ${inDim}] (out, in)`);
    const b = floats(`layers[${i}].b`, layer.b, outDim);
    steps.push({
      op: 'Gemm',
      consts: [g.addInitializer(`W${i}`, W, [outDim, inDim]), g.addInitializer(`b${i}`, b, [outDim])],
      attributes: { transB: { i: 1 } },
    });
    if (layer.activation === 'tanh') steps.push({ op: 'Tanh', consts: [] });
    else if (layer.activation !== 'none') {
      throw new InvalidArgument(
        `layers[${i}].activation`,
        `must be 'tanh' or 'none', got ${String(layer.activation)}`,
      );
    }
    inDim = outDim;
  });
  if (inDim !== actDim)
    throw new InvalidArgument('layers', `the last layer outputs ${inDim} values, actDim is ${actDim}`);
  const bounds = actionBounds(spec);
  if (bounds) {
    steps.push({ op: 'Max', consts: [g.addInitializer('action_low', bounds[0], [actDim])] });
    steps.push({ op: 'Min', consts: [g.addInitializer('action_high', bounds[1], [actDim])] });
  }

  let x = POLICY_INPUT;
  steps.forEach((s, i) => {
    const last = i === steps.length - 1;
    [x] = g.addNode(s.op, [x, ...s.consts], {
      ...(last ? { outputs: [POLICY_OUTPUT] } : {}),
      ...(s.attributes ? { attributes: s.attributes } : {}),
    }) as [string];
  });

  const standard: Record<string, string> = {
    'pbridge.format': POLICY_FORMAT,
    obs_dim: String(obsDim),
    act_dim: String(actDim),
    hidden_sizes: spec.layers
      .slice(0, -1)
      .map((l) => l.b.length)
      .join(','),
    activations: spec.layers.map((l) => l.activation).join(','),
    obs_clip: String(spec.obsClip),
    action_clip: bounds ? 'bounds' : 'none',
  };
  for (const [k, v] of Object.entries(standard)) g.setMetadata(k, v);
  for (const [k, v] of Object.entries(spec.metadata ?? {})) {
    if (k in standard)
      throw new InvalidArgument(`metadata.${k}`, 'is written by the exporter; use another key');
    if (typeof v !== 'string')
      throw new InvalidArgument(`metadata.${k}`, 'ONNX metadata values must be strings');
    g.setMetadata(k, v);
  }
  return g.toBytes({ producerName: 'progress-bridge', producerVersion: POLICY_FORMAT });
}

/** Writes the policy to `path` atomically (a reader never sees half a model). */
export async function exportPolicyOnnx(spec: PolicyExportSpec, path: string): Promise<void> {
  await atomicWriteFile(path, buildPolicyOnnx(spec));
}

function checkDim(field: string, n: number): void {
  if (!Number.isSafeInteger(n) || n < 1)
    throw new InvalidArgument(field, `must be a positive integer, got ${n}`);
}

function floats(field: string, data: ArrayLike<number>, n: number, shape = `[${n}]`): Float32Array {
  if (data.length !== n)
    throw new InvalidArgument(field, `has ${data.length} values, expected ${n} for ${shape}`);
  const out = Float32Array.from(data);
  const bad = out.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) throw new InvalidArgument(field, `value ${bad} is ${out[bad]}; a policy must be finite`);
  return out;
}

function obsStd(spec: PolicyExportSpec): Float32Array {
  let std: Float32Array;
  if (spec.obsStd && !spec.obsVar) {
    std = floats('obsStd', spec.obsStd, spec.obsDim);
  } else if (spec.obsVar && !spec.obsStd) {
    const v = floats('obsVar', spec.obsVar, spec.obsDim);
    const eps = spec.obsEps ?? 1e-8;
    std = v.map((x) => Math.sqrt(x + eps));
  } else {
    throw new InvalidArgument('obsStd', 'give exactly one of obsStd and obsVar');
  }
  const bad = std.findIndex((s) => !(s > 0));
  if (bad >= 0) throw new InvalidArgument('obsStd', `entry ${bad} is ${std[bad]}; must be > 0`);
  return std;
}

function actionBounds(spec: PolicyExportSpec): [Float32Array, Float32Array] | undefined {
  if (spec.actionLow === undefined && spec.actionHigh === undefined) return undefined;
  if (spec.actionLow === undefined || spec.actionHigh === undefined) {
    throw new InvalidArgument('actionLow', 'give both actionLow and actionHigh, or neither');
  }
  const expand = (field: string, v: number | ArrayLike<number>) =>
    typeof v === 'number' ? new Float32Array(spec.actDim).fill(v) : floats(field, v, spec.actDim);
  const lo = expand('actionLow', spec.actionLow);
  const hi = expand('actionHigh', spec.actionHigh);
  const bad = lo.findIndex((l, i) => !(l <= hi[i]!));
  if (bad >= 0) throw new InvalidArgument('actionLow', `entry ${bad}: low ${lo[bad]} > high ${hi[bad]}`);
  return [lo, hi];
}

export interface LoadPolicyOptions {
  /** Fail at load unless the model takes this many observation values. */
  obsDim?: number;
  /** Fail at load unless the model outputs this many action values. */
  actDim?: number;
  /** onnxruntime intra-op threads (default 1: a small MLP gains nothing from more, and the envs want the cores). */
  threads?: number;
}

export interface OnnxPolicy {
  readonly path: string;
  readonly obsDim: number;
  readonly actDim: number;
  /** ModelProto.metadata_props (read from the file; onnxruntime-node does not expose them). */
  readonly metadata: Record<string, string>;
  readonly info: OnnxModelInfo;
  /** obs: [batch, obs_dim] row-major raw observations. Resolves with [batch, act_dim] mean actions. */
  run(obs: Float32Array, batch: number): Promise<Float32Array>;
  close(): Promise<void>;
}

/**
 * Opens any ONNX policy with the signature obs float32 [B, obs_dim] -> action float32 [B, act_dim] (ours, or one
 * exported from PyTorch) and checks that signature before the first step instead of failing inside it.
 */
export async function loadOnnxPolicy(path: string, options: LoadPolicyOptions = {}): Promise<OnnxPolicy> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new FileNotFoundError(path, 'ONNX policy');
    throw err;
  }
  // Our parser first: for a truncated file it names the byte, where onnxruntime only says "protobuf parsing failed".
  const info = parseOnnxMetadata(bytes, path);
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(bytes, {
      executionProviders: ['cpu'],
      intraOpNumThreads: options.threads ?? 1,
      interOpNumThreads: 1,
    });
  } catch (err) {
    throw new InvalidOnnxModel(path, `onnxruntime refused it: ${(err as Error).message}`, { cause: err });
  }
  try {
    const obsDim = checkTensor(path, session, 'input', POLICY_INPUT, 'obs_dim', options.obsDim);
    const actDim = checkTensor(path, session, 'output', POLICY_OUTPUT, 'act_dim', options.actDim);
    if (session.inputNames.length !== 1) {
      throw new OnnxSignatureMismatch(
        path,
        POLICY_INPUT,
        `expected obs to be the only input, the model also needs ${describe(session.inputMetadata.filter((m) => m.name !== POLICY_INPUT))}`,
      );
    }
    return makePolicy(path, session, info, obsDim, actDim);
  } catch (err) {
    await session.release();
    throw err;
  }
}

function describe(list: readonly ort.InferenceSession.ValueMetadata[]): string {
  if (list.length === 0) return '(none)';
  return list
    .map((m) => (m.isTensor ? `${m.name} ${m.type} [${m.shape.join(', ')}]` : `${m.name} (not a tensor)`))
    .join(', ');
}

/** Returns the fixed size of dimension 1. */
function checkTensor(
  path: string,
  session: ort.InferenceSession,
  kind: 'input' | 'output',
  name: string,
  dimName: string,
  expectedDim: number | undefined,
): number {
  const list = kind === 'input' ? session.inputMetadata : session.outputMetadata;
  const expected = `float32 [B, ${expectedDim ?? dimName}]`;
  const m = list.find((x) => x.name === name);
  if (!m) {
    throw new OnnxSignatureMismatch(
      path,
      name,
      `the model has no ${kind} named ${name} (expected ${name} ${expected}); its ${kind}s are: ${describe(list)}`,
    );
  }
  const actual = describe([m]);
  const fail = (why: string) =>
    new OnnxSignatureMismatch(path, name, `expected ${name} ${expected}, got ${actual}: ${why}`);
  if (!m.isTensor) throw fail('not a tensor');
  if (m.type !== 'float32') throw fail(`element type is ${m.type}`);
  if (m.shape.length !== 2) throw fail(`rank ${m.shape.length}, expected 2`);
  const [batch, size] = m.shape;
  // A fixed batch is the usual mistake of a torch.onnx.export without dynamic axes; the policy would only ever
  // accept that one batch size.
  if (typeof batch === 'number')
    throw fail(`fixed batch size ${batch}; the batch dimension must be symbolic`);
  if (typeof size !== 'number' || size < 1) throw fail(`${dimName} must be a fixed size`);
  if (expectedDim !== undefined && size !== expectedDim)
    throw fail(`${dimName} is ${size}, expected ${expectedDim}`);
  return size;
}

function makePolicy(
  path: string,
  session: ort.InferenceSession,
  info: OnnxModelInfo,
  obsDim: number,
  actDim: number,
): OnnxPolicy {
  let closed = false;
  return {
    path,
    obsDim,
    actDim,
    metadata: info.metadata,
    info,
    async run(obs, batch) {
      if (closed) throw new InvalidArgument('policy', `${path} was closed`);
      if (!Number.isSafeInteger(batch) || batch < 1) {
        throw new InvalidArgument('batch', `must be a positive integer, got ${batch}`);
      }
      if (!(obs instanceof Float32Array) || obs.length !== batch * obsDim) {
        throw new InvalidArgument(
          'obs',
          `expected a Float32Array of batch * obs_dim = ${batch} * ${obsDim} = ${batch * obsDim} values, got ${obs.length}`,
        );
      }
      const out = await session.run({ [POLICY_INPUT]: new ort.Tensor('float32', obs, [batch, obsDim]) }, [
        POLICY_OUTPUT,
      ]);
      const action = out[POLICY_OUTPUT] as ort.Tensor;
      if (!(action.data instanceof Float32Array) || action.data.length !== batch * actDim) {
        throw new OnnxSignatureMismatch(
          path,
          POLICY_OUTPUT,
          `returned ${action.type} [${action.dims.join(', ')}] for a batch of ${batch}, expected float32 [${batch}, ${actDim}]`,
        );
      }
      return action.data;
    },
    async close() {
      if (closed) return;
      closed = true;
      await session.release();
    },
  };
}
