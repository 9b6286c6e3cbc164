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
  /**
   * [B, sizes[l]]: dActs[0] is the gradient w.r.t. the input; dActs[l] for l >= 1 is the gradient w.r.t. the
   * sums of layer l - 1 before its activation (tanh is differentiated as the gradient is written).
   */
  dActs: Float32Array[];
  /** Float64 sums of one matrix product before they are activated or rounded to float32 (see linearForward). */
  sums: Float64Array;
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
      linearForward(W, bias, inp, out, batch, nIn, nOut, l !== last, ws.sums);
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
      const propagate = l > 0 || inputGrad;
      // The input of every layer but the first is a tanh output.
      const inputTanh = l > 0;
      const dIn = ws.dActs[l]!;
      linearBackward(
        W,
        gW,
        gb,
        ws.acts[l]!,
        ws.dActs[l + 1]!,
        dIn,
        batch,
        nIn,
        nOut,
        propagate,
        inputTanh,
        ws.sums,
      );
    }
    return ws.dActs[0]!;
  }

  private workspace(batch: number): Workspace {
    if (!Number.isInteger(batch) || batch < 1) {
      throw new InvalidArgument('mlp.batch', `must be a positive integer, got ${batch}`);
    }
    let ws = this.workspaces.get(batch);
    if (!ws) {
      // sums holds [B, out] pre-activations, [B, in] input gradients or [out, in] weight gradients.
      const widest = Math.max(...this.sizes);
      const biggestW = Math.max(...this.layers.map((l) => l.outSize * l.inSize));
      ws = {
        acts: this.sizes.map((s) => new Float32Array(batch * s)),
        dActs: this.sizes.map((s) => new Float32Array(batch * s)),
        sums: new Float64Array(Math.max(batch * widest, biggestW)),
      };
      this.workspaces.set(batch, ws);
    }
    return ws;
  }
}

// fastTanh's exp(2x) = 2^(k/32) * exp(z) with k = trunc(2x * 32 / ln 2), so z = 2x - k ln 2 / 32 lies within
// +-ln 2 / 32, where the Taylor polynomial to z^7 is exact to float64 rounding (the next term is < 2e-18).
// ln 2 / 32 comes as fdlibm's split: a high part whose products with k are exact, and a low part.
const K_PER_2X = 32 / Math.LN2;
const LN2_32_HI = 6.9314718036912382e-1 / 32;
const LN2_32_LO = 1.9082149292705877e-10 / 32;
/** 2^(j / 32) for j = k mod 32. */
const EXP2_FRAC = Float64Array.from({ length: 32 }, (_, j) => 2 ** (j / 32));
/** 2^e for e = floor(k / 32), at index e + 64; |2x| <= 40 needs |e| <= 58. */
const EXP2_INT = Float64Array.from({ length: 128 }, (_, i) => 2 ** (i - 64));

/**
 * tanh(x) to a relative error of about 1e-14 against Math.tanh, so float32 activations round to the same
 * values (all but 1 of 14 million random inputs, each within 1e-14 of a float32 rounding tie). V8's Math.tanh
 * is a call into C costing ~35 ns; this is inlined and costs ~15, and a PPO update evaluates millions of tanh.
 */
export function fastTanh(x: number): number {
  // Near 0, 1 - 2 / (1 + e^2x) would cancel: the odd Taylor series there has its next term < 1e-17 x.
  if (Math.abs(x) < 0.03125) {
    const x2 = x * x;
    return x * (1 + x2 * (-1 / 3 + x2 * (2 / 15 + x2 * (-17 / 315 + x2 * (62 / 2835)))));
  }
  // tanh is 1 to float64 precision well before 20, and the tables need |2x| < 40. NaN falls through to NaN.
  if (x > 20) return 1;
  if (x < -20) return -1;
  const y = 2 * x;
  const k = (y * K_PER_2X) | 0;
  const z = y - k * LN2_32_HI - k * LN2_32_LO;
  // Estrin's scheme: shorter dependency chains than Horner's, so more of it runs in parallel.
  const z2 = z * z;
  const p =
    1 + z + z2 * (1 / 2 + z * (1 / 6) + z2 * (1 / 24 + z * (1 / 120) + z2 * (1 / 720 + z * (1 / 5040))));
  const e = p * EXP2_FRAC[k & 31]! * EXP2_INT[(k >> 5) + 64]!;
  return 1 - 2 / (1 + e);
}

/**
 * out[r, o] = act(b[o] + sum_i W[o, i] * inp[r, i]) for r < B, with act = tanh or identity. The sums go through
 * the float64 buffer `sums` so tanh sees them unrounded, and so its one call site here is inlined (16 call sites
 * in the kernel's tile would not be, and every call would then box its number argument and result).
 */
function linearForward(
  W: Float32Array,
  b: Float32Array,
  inp: Float32Array,
  out: Float32Array,
  B: number,
  nIn: number,
  nOut: number,
  tanh: boolean,
  sums: Float64Array,
): void {
  // Starting each sum from the bias keeps the float64 sums in the order b + w0 x0 + w1 x1 + ...
  for (let r = 0; r < B; r++) {
    const yo = r * nOut;
    for (let o = 0; o < nOut; o++) sums[yo + o] = b[o]!;
  }
  gemmAccumulate(inp, nIn, 1, W, nIn, 1, sums, B, nOut, nIn);
  const n = B * nOut;
  if (tanh) for (let i = 0; i < n; i++) out[i] = fastTanh(sums[i]!);
  else for (let i = 0; i < n; i++) out[i] = sums[i]!;
}

/**
 * Given dOut = dLoss/dz [B, nOut] of z = W inp + b: adds dLoss/dW and dLoss/db into gW, gb and, when
 * `propagate`, writes dLoss/dinp [B, nIn] into dIn (else zeros); with `inputTanh`, inp is tanh(u) of the layer
 * below and dIn gets dLoss/du = dLoss/dinp * (1 - inp^2) instead, saving a pass over it. Each gradient is summed
 * over the whole batch in float64 (in `sums`) and rounded to float32 once.
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
  inputTanh: boolean,
  sums: Float64Array,
): void {
  for (let o = 0; o < nOut; o++) {
    let s = 0;
    for (let r = 0; r < B; r++) s += dOut[r * nOut + o]!;
    gb[o] = gb[o]! + s;
  }
  // gW[o, i] += sum_r dOut[r, o] * inp[r, i]: both operands read down their columns.
  const nW = nOut * nIn;
  sums.fill(0, 0, nW);
  gemmAccumulate(dOut, 1, nOut, inp, 1, nIn, sums, nOut, nIn, B);
  for (let i = 0; i < nW; i++) gW[i] = gW[i]! + sums[i]!;
  if (!propagate) {
    dIn.fill(0);
    return;
  }
  // dIn[r, i] = sum_o dOut[r, o] * W[o, i]: W read down its columns.
  const nX = B * nIn;
  sums.fill(0, 0, nX);
  gemmAccumulate(dOut, nOut, 1, W, 1, nIn, sums, B, nIn, nOut);
  if (inputTanh) {
    for (let i = 0; i < nX; i++) {
      const y = inp[i]!;
      dIn[i] = sums[i]! * (1 - y * y);
    }
  } else {
    for (let i = 0; i < nX; i++) dIn[i] = sums[i]!;
  }
}

/**
 * C[m, n] += sum_k A(m, k) * B(n, k) for m < M, n < N, with C [M, N] row-major and the operands read through
 * strides, A(m, k) = A[m * aRow + k * aCol] and B(n, k) = B[n * bRow + k * bCol], so the forward pass (inp W^T),
 * the input gradient (dOut W) and the weight gradient (dOut^T inp) share one kernel without transposing
 * anything. Each sum adds its terms in order of k, in float64.
 *
 * V8 emits scalar code only, so what limits it is the loads and float32 conversions per multiply-add: a tile of
 * 4 x 4 outputs loads 8 values for 16 multiply-adds, against 5 for 4 with a 4 x 1 tile (measured 1.5-2x
 * faster). Larger tiles or unrolling over k measured no faster or slower: the accumulators no longer fit in
 * the CPU's registers.
 */
function gemmAccumulate(
  A: Float32Array,
  aRow: number,
  aCol: number,
  B: Float32Array,
  bRow: number,
  bCol: number,
  C: Float64Array,
  M: number,
  N: number,
  K: number,
): void {
  const M4 = M - (M % 4);
  const N4 = N - (N % 4);
  for (let m = 0; m < M4; m += 4) {
    const pa = m * aRow;
    for (let n = 0; n < N4; n += 4) tile4x4(A, pa, aRow, aCol, B, n * bRow, bRow, bCol, C, m * N + n, N, K);
    for (let n = N4; n < N; n++) tile4x1(A, pa, aRow, aCol, B, n * bRow, bCol, C, m * N + n, N, K);
  }
  // The last M % 4 rows, one output at a time.
  for (let m = M4; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let pa = m * aRow;
      let pb = n * bRow;
      let s = C[m * N + n]!;
      for (let k = 0; k < K; k++) {
        s += A[pa]! * B[pb]!;
        pa += aCol;
        pb += bCol;
      }
      C[m * N + n] = s;
    }
  }
}

/** The 4 x 4 outputs of `gemmAccumulate` from rows at pa.. of A and pb.. of B, at offset c of C (row length N). */
function tile4x4(
  A: Float32Array,
  pa: number,
  aRow: number,
  aCol: number,
  B: Float32Array,
  pb: number,
  bRow: number,
  bCol: number,
  C: Float64Array,
  c: number,
  N: number,
  K: number,
): void {
  const a2 = 2 * aRow;
  const a3 = 3 * aRow;
  const b2 = 2 * bRow;
  const b3 = 3 * bRow;
  const c1 = c + N;
  const c2 = c1 + N;
  const c3 = c2 + N;
  let s00 = C[c]!;
  let s01 = C[c + 1]!;
  let s02 = C[c + 2]!;
  let s03 = C[c + 3]!;
  let s10 = C[c1]!;
  let s11 = C[c1 + 1]!;
  let s12 = C[c1 + 2]!;
  let s13 = C[c1 + 3]!;
  let s20 = C[c2]!;
  let s21 = C[c2 + 1]!;
  let s22 = C[c2 + 2]!;
  let s23 = C[c2 + 3]!;
  let s30 = C[c3]!;
  let s31 = C[c3 + 1]!;
  let s32 = C[c3 + 2]!;
  let s33 = C[c3 + 3]!;
  for (let k = 0; k < K; k++) {
    const w0 = B[pb]!;
    const w1 = B[pb + bRow]!;
    const w2 = B[pb + b2]!;
    const w3 = B[pb + b3]!;
    let x = A[pa]!;
    s00 += x * w0;
    s01 += x * w1;
    s02 += x * w2;
    s03 += x * w3;
    x = A[pa + aRow]!;
    s10 += x * w0;
    s11 += x * w1;
    s12 += x * w2;
    s13 += x * w3;
    x = A[pa + a2]!;
    s20 += x * w0;
    s21 += x * w1;
    s22 += x * w2;
    s23 += x * w3;
    x = A[pa + a3]!;
    s30 += x * w0;
    s31 += x * w1;
    s32 += x * w2;
    s33 += x * w3;
    pa += aCol;
    pb += bCol;
  }
  C[c] = s00;
  C[c + 1] = s01;
  C[c + 2] = s02;
  C[c + 3] = s03;
  C[c1] = s10;
  C[c1 + 1] = s11;
  C[c1 + 2] = s12;
  C[c1 + 3] = s13;
  C[c2] = s20;
  C[c2 + 1] = s21;
  C[c2 + 2] = s22;
  C[c2 + 3] = s23;
  C[c3] = s30;
  C[c3 + 1] = s31;
  C[c3 + 2] = s32;
  C[c3 + 3] = s33;
}

/** The 4 x 1 outputs of `gemmAccumulate` from rows at pa.. of A and row pb of B, at offset c of C (row length N). */
function tile4x1(
  A: Float32Array,
  pa: number,
  aRow: number,
  aCol: number,
  B: Float32Array,
  pb: number,
  bCol: number,
  C: Float64Array,
  c: number,
  N: number,
  K: number,
): void {
  const a2 = 2 * aRow;
  const a3 = 3 * aRow;
  let s0 = C[c]!;
  let s1 = C[c + N]!;
  let s2 = C[c + 2 * N]!;
  let s3 = C[c + 3 * N]!;
  for (let k = 0; k < K; k++) {
    const w = B[pb]!;
    s0 += A[pa]! * w;
    s1 += A[pa + aRow]! * w;
    s2 += A[pa + a2]! * w;
    s3 += A[pa + a3]! * w;
    pa += aCol;
    pb += bCol;
  }
  C[c] = s0;
  C[c + N] = s1;
  C[c + 2 * N] = s2;
  C[c + 3 * N] = s3;
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
