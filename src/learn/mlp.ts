/**
 * A small fully connected network with hand-written forward and backward passes on Float32Array.
 *
 * Parameter layout (one flat vector, so Adam, gradient clipping and checkpoints see one array): for each layer
 * in order, its weight W as [out, in] row-major, then its bias b as [out]. That is PyTorch's `nn.Linear` order
 * and ONNX `Gemm(x, W, b, transB=1)` reads W as is. Hidden layers apply tanh; the last layer is linear.
 * Gradients live in a second flat vector with the same layout and are accumulated (`+=`) by `backward`, so
 * clear them with `zeroGrad` before each minibatch.
 */
import type { Rng } from '../env/rng.ts';
import { InvalidArgument } from '../sim/errors.ts';

/** Activation of the hidden layers. Only tanh today; exporters read it from `Mlp.activation`. */
export type Activation = 'tanh';

/** One linear layer as views into the network's flat vectors. */
export interface MlpLayer {
  inSize: number;
  outSize: number;
  /** Offset of W in the flat parameter vector; b follows at `weightOffset + outSize * inSize`. */
  weightOffset: number;
  biasOffset: number;
  /** [out, in] row-major view of the parameters. */
  W: Float32Array;
  /** [out] view of the parameters. */
  b: Float32Array;
  /** Gradient views with the same shapes. */
  gW: Float32Array;
  gb: Float32Array;
}

/** Flat storage for a network's parameters and gradients, e.g. views into a larger model vector. */
export interface MlpStorage {
  params: Float32Array;
  grads: Float32Array;
}

/** Activations kept between forward and backward for one batch size. */
interface Workspace {
  /** acts[l] is the input of layer l, [B, sizes[l]]; acts[L] is the output. acts[0] is a copy of x. */
  acts: Float32Array[];
  /** Gradient w.r.t. acts[l]: [B, sizes[l]]. */
  dActs: Float32Array[];
}

export interface MlpOptions {
  /** Storage to use instead of allocating; both of length `Mlp.paramCount(sizes)`. */
  storage?: MlpStorage;
}

export class Mlp {
  /** Layer widths from input to output: [in, ...hidden, out]. */
  readonly sizes: readonly number[];
  readonly activation: Activation = 'tanh';
  readonly params: Float32Array;
  readonly grads: Float32Array;
  readonly layers: readonly MlpLayer[];
  private readonly workspaces = new Map<number, Workspace>();
  private lastBatch = -1;

  /** Number of parameters of a network with these layer widths. */
  static paramCount(sizes: readonly number[]): number {
    let n = 0;
    for (let l = 0; l + 1 < sizes.length; l++) n += sizes[l + 1]! * sizes[l]! + sizes[l + 1]!;
    return n;
  }

  constructor(inSize: number, hidden: readonly number[], outSize: number, options: MlpOptions = {}) {
    const sizes = [inSize, ...hidden, outSize];
    sizes.forEach((s, i) => {
      if (!Number.isInteger(s) || s < 1) {
        throw new InvalidArgument(
          'mlp.sizes',
          `layer widths must be positive integers, got ${s} at index ${i}`,
        );
      }
    });
    this.sizes = sizes;
    const count = Mlp.paramCount(sizes);
    const storage = options.storage ?? { params: new Float32Array(count), grads: new Float32Array(count) };
    if (storage.params.length !== count || storage.grads.length !== count) {
      throw new InvalidArgument(
        'mlp.storage',
        `needs ${count} parameters and gradients, got ${storage.params.length} and ${storage.grads.length}`,
      );
    }
    this.params = storage.params;
    this.grads = storage.grads;
    const layers: MlpLayer[] = [];
    let off = 0;
    for (let l = 0; l + 1 < sizes.length; l++) {
      const inS = sizes[l]!;
      const outS = sizes[l + 1]!;
      const wOff = off;
      const bOff = off + outS * inS;
      layers.push({
        inSize: inS,
        outSize: outS,
        weightOffset: wOff,
        biasOffset: bOff,
        W: this.params.subarray(wOff, bOff),
        b: this.params.subarray(bOff, bOff + outS),
        gW: this.grads.subarray(wOff, bOff),
        gb: this.grads.subarray(bOff, bOff + outS),
      });
      off = bOff + outS;
    }
    this.layers = layers;
  }

  get inSize(): number {
    return this.sizes[0]!;
  }

  get outSize(): number {
    return this.sizes[this.sizes.length - 1]!;
  }

  /**
   * Orthogonal weights and zero biases (PPO implementation detail 2): hidden layers scaled by `hiddenGain`
   * (sqrt 2 for tanh in CleanRL), the last by `outputGain` (0.01 for a policy mean so early actions do not
   * depend on the observation, 1 for a value head).
   */
  init(rng: Rng, outputGain: number, hiddenGain = Math.SQRT2): void {
    this.layers.forEach((layer, l) => {
      const gain = l === this.layers.length - 1 ? outputGain : hiddenGain;
      orthogonalInit(layer.W, layer.outSize, layer.inSize, gain, rng);
      layer.b.fill(0);
    });
  }

  zeroGrad(): void {
    this.grads.fill(0);
  }

  /**
   * Forward pass of a batch. x: [B, in] row-major. Returns [B, out], a buffer owned by the network and reused
   * by the next forward of the same batch size; `backward` needs the activations of the latest forward.
   */
  forward(x: ArrayLike<number>, batch: number): Float32Array {
    if (x.length < batch * this.inSize) {
      throw new InvalidArgument('mlp.forward.x', `needs ${batch * this.inSize} values, got ${x.length}`);
    }
    const ws = this.workspace(batch);
    const a0 = ws.acts[0]!;
    for (let i = 0; i < a0.length; i++) a0[i] = x[i]!;
    const last = this.layers.length - 1;
    for (let l = 0; l <= last; l++) {
      const { inSize: nIn, outSize: nOut } = this.layers[l]!;
      const W = this.layers[l]!.W;
      const bias = this.layers[l]!.b;
      const inp = ws.acts[l]!;
      const out = ws.acts[l + 1]!;
      linearForward(W, bias, inp, out, batch, nIn, nOut, l !== last);
    }
    this.lastBatch = batch;
    return ws.acts[last + 1]!;
  }

  /**
   * Backward pass for the latest forward: dOut is dLoss/dOutput, [B, out]. Adds dLoss/dParams into `grads`
   * and returns dLoss/dInput, [B, in] (a reused buffer), or zeros when `inputGrad` is false (training does
   * not need it, and skipping it saves a third of the first layer's work).
   */
  backward(dOut: ArrayLike<number>, batch: number, inputGrad = true): Float32Array {
    if (batch !== this.lastBatch) {
      throw new InvalidArgument(
        'mlp.backward.batch',
        `must match the latest forward (${this.lastBatch}), got ${batch}`,
      );
    }
    const ws = this.workspace(batch);
    const last = this.layers.length - 1;
    const dTop = ws.dActs[last + 1]!;
    for (let i = 0; i < dTop.length; i++) dTop[i] = dOut[i]!;
    for (let l = last; l >= 0; l--) {
      const { inSize: nIn, outSize: nOut, W, gW, gb } = this.layers[l]!;
      const inp = ws.acts[l]!;
      const out = ws.acts[l + 1]!;
      const dOutL = ws.dActs[l + 1]!;
      const dIn = ws.dActs[l]!;
      // Through tanh in place: d/dz tanh(z) = 1 - tanh(z)^2, and tanh(z) is the stored output.
      if (l !== last) {
        for (let i = 0; i < dOutL.length; i++) {
          const y = out[i]!;
          dOutL[i] = dOutL[i]! * (1 - y * y);
        }
      }
      linearBackward(W, gW, gb, inp, dOutL, dIn, batch, nIn, nOut, l > 0 || inputGrad);
    }
    return ws.dActs[0]!;
  }

  private workspace(batch: number): Workspace {
    if (!Number.isInteger(batch) || batch < 1) {
      throw new InvalidArgument('mlp.batch', `must be a positive integer, got ${batch}`);
    }
    let ws = this.workspaces.get(batch);
    if (!ws) {
      ws = {
        acts: this.sizes.map((s) => new Float32Array(batch * s)),
        dActs: this.sizes.map((s) => new Float32Array(batch * s)),
      };
      this.workspaces.set(batch, ws);
    }
    return ws;
  }
}

// The two kernels below take four batch rows at a time: each weight is loaded once for four rows, and the four
// independent sums keep the CPU's pipelines busy (about twice as fast as one row at a time in V8).

/** out[r, o] = act(b[o] + sum_i W[o, i] * inp[r, i]) for r < B, with act = tanh or identity. */
function linearForward(
  W: Float32Array,
  b: Float32Array,
  inp: Float32Array,
  out: Float32Array,
  B: number,
  nIn: number,
  nOut: number,
  tanh: boolean,
): void {
  let r = 0;
  for (; r + 4 <= B; r += 4) {
    const x0 = r * nIn;
    const x1 = x0 + nIn;
    const x2 = x1 + nIn;
    const x3 = x2 + nIn;
    const y0 = r * nOut;
    for (let o = 0; o < nOut; o++) {
      const bo = b[o]!;
      let s0 = bo;
      let s1 = bo;
      let s2 = bo;
      let s3 = bo;
      const wo = o * nIn;
      for (let i = 0; i < nIn; i++) {
        const w = W[wo + i]!;
        s0 += w * inp[x0 + i]!;
        s1 += w * inp[x1 + i]!;
        s2 += w * inp[x2 + i]!;
        s3 += w * inp[x3 + i]!;
      }
      if (tanh) {
        s0 = Math.tanh(s0);
        s1 = Math.tanh(s1);
        s2 = Math.tanh(s2);
        s3 = Math.tanh(s3);
      }
      out[y0 + o] = s0;
      out[y0 + nOut + o] = s1;
      out[y0 + 2 * nOut + o] = s2;
      out[y0 + 3 * nOut + o] = s3;
    }
  }
  for (; r < B; r++) {
    const xo = r * nIn;
    const yo = r * nOut;
    for (let o = 0; o < nOut; o++) {
      let s = b[o]!;
      const wo = o * nIn;
      for (let i = 0; i < nIn; i++) s += W[wo + i]! * inp[xo + i]!;
      out[yo + o] = tanh ? Math.tanh(s) : s;
    }
  }
}

/**
 * Given dOut = dLoss/dz [B, nOut] of z = W inp + b: adds dLoss/dW and dLoss/db into gW, gb and, when
 * `propagate`, writes dLoss/dinp [B, nIn] into dIn.
 */
function linearBackward(
  W: Float32Array,
  gW: Float32Array,
  gb: Float32Array,
  inp: Float32Array,
  dOut: Float32Array,
  dIn: Float32Array,
  B: number,
  nIn: number,
  nOut: number,
  propagate: boolean,
): void {
  dIn.fill(0);
  let r = 0;
  for (; r + 4 <= B; r += 4) {
    const x0 = r * nIn;
    const x1 = x0 + nIn;
    const x2 = x1 + nIn;
    const x3 = x2 + nIn;
    const y0 = r * nOut;
    for (let o = 0; o < nOut; o++) {
      const d0 = dOut[y0 + o]!;
      const d1 = dOut[y0 + nOut + o]!;
      const d2 = dOut[y0 + 2 * nOut + o]!;
      const d3 = dOut[y0 + 3 * nOut + o]!;
      gb[o] = gb[o]! + (d0 + d1 + d2 + d3);
      const wo = o * nIn;
      for (let i = 0; i < nIn; i++) {
        gW[wo + i] =
          gW[wo + i]! + (d0 * inp[x0 + i]! + d1 * inp[x1 + i]! + d2 * inp[x2 + i]! + d3 * inp[x3 + i]!);
      }
      if (propagate) {
        for (let i = 0; i < nIn; i++) {
          const w = W[wo + i]!;
          dIn[x0 + i] = dIn[x0 + i]! + d0 * w;
          dIn[x1 + i] = dIn[x1 + i]! + d1 * w;
          dIn[x2 + i] = dIn[x2 + i]! + d2 * w;
          dIn[x3 + i] = dIn[x3 + i]! + d3 * w;
        }
      }
    }
  }
  for (; r < B; r++) {
    const xo = r * nIn;
    const yo = r * nOut;
    for (let o = 0; o < nOut; o++) {
      const d = dOut[yo + o]!;
      gb[o] = gb[o]! + d;
      const wo = o * nIn;
      for (let i = 0; i < nIn; i++) gW[wo + i] = gW[wo + i]! + d * inp[xo + i]!;
      if (propagate) for (let i = 0; i < nIn; i++) dIn[xo + i] = dIn[xo + i]! + d * W[wo + i]!;
    }
  }
}

/**
 * Fills W ([rows, cols] row-major) with a scaled orthogonal matrix as `torch.nn.init.orthogonal_` does:
 * Gram-Schmidt (QR with a positive R diagonal) of a standard Gaussian matrix, so rows are orthonormal when
 * rows <= cols (W W^T = gain^2 I) and columns otherwise (W^T W = gain^2 I).
 */
export function orthogonalInit(W: Float32Array, rows: number, cols: number, gain: number, rng: Rng): void {
  // Orthonormalise the k = min(rows, cols) vectors of length n = max(rows, cols), in float64.
  const k = Math.min(rows, cols);
  const n = Math.max(rows, cols);
  const q = new Float64Array(k * n);
  for (let i = 0; i < q.length; i++) q[i] = rng.normal();
  for (let j = 0; j < k; j++) {
    const qj = j * n;
    // Two passes of modified Gram-Schmidt keep the vectors orthogonal to float64 precision.
    for (let pass = 0; pass < 2; pass++) {
      for (let p = 0; p < j; p++) {
        const qp = p * n;
        let dot = 0;
        for (let i = 0; i < n; i++) dot += q[qp + i]! * q[qj + i]!;
        for (let i = 0; i < n; i++) q[qj + i] = q[qj + i]! - dot * q[qp + i]!;
      }
    }
    let norm = 0;
    for (let i = 0; i < n; i++) norm += q[qj + i]! * q[qj + i]!;
    norm = Math.sqrt(norm);
    for (let i = 0; i < n; i++) q[qj + i] = q[qj + i]! / norm;
  }
  // q holds k orthonormal vectors: they are W's rows when rows <= cols, else its columns.
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      W[r * cols + c] = gain * (rows <= cols ? q[r * n + c]! : q[c * n + r]!);
    }
  }
}
