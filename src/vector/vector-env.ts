/**
 * N envs of one task over W worker threads, with Gymnasium 1.x vector-env semantics.
 *
 * - Sub-env i is seeded with seed + i (or seed[i] when a list is given).
 * - Autoreset modes (`metadata.autoreset_mode`), as Gymnasium documents them:
 *   - `next-step` (default): the step after an episode ends resets that sub-env, ignores its action and
 *     returns the new episode's first observation with reward 0 and terminated = truncated = false.
 *   - `same-step`: the ending step resets immediately; it returns the ending step's reward and flags, the new
 *     episode's first observation, and the ended episode's last observation in `info.final_obs`
 *     (mask `info._final_obs`) and its info in `info.final_info`.
 *   - `disabled`: ended sub-envs stay ended; stepping one is an error until `reset({ options: { reset_mask } })`.
 * - Observations, actions, rewards and flags live in one SharedArrayBuffer; a step posts no messages.
 * - A worker that throws or dies rejects the pending call with `WorkerFailed`; every later call rejects too.
 */
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import { checkSeed, type EnvOptions } from '../env/env.ts';
import { Box } from '../env/spaces.ts';
import {
  EnvClosed,
  errorFromCode,
  InvalidAction,
  InvalidArgument,
  ProgressBridgeError,
  ResetNeeded,
  WorkerFailed,
} from '../sim/errors.ts';
import {
  AUTORESET_MODES,
  COMMAND,
  CONTROL_STRIDE,
  Command,
  DONE,
  REQUEST,
  sharedBytes,
  sharedViews,
  workerSlice,
  type AttachMessage,
  type AutoresetMode,
  type SharedLayout,
  type SharedViews,
  type WorkerInit,
  type WorkerMessage,
} from './layout.ts';

export interface VectorEnvOptions {
  /** Task registry name or path to a task module. */
  task: string;
  /** Number of sub-envs (1..4096). */
  numEnvs: number;
  /** Worker threads (1..numEnvs); default min(numEnvs, available cores). */
  workers?: number;
  /** Autoreset mode (default `next-step`). */
  autoreset?: AutoresetMode;
  /** Options for every sub-env (action mode, time limit, ...). */
  envOptions?: EnvOptions;
  /** Return copies of observations (default true); false returns views valid until the next call. */
  copy?: boolean;
  /** Sub-envs 0..poseEnvs-1 share their body poses after every step (`poses()`), for live viewers. Default 0. */
  poseEnvs?: number;
  /**
   * Render image observations only at episode steps that are multiples of this (default 1, every step); between
   * them an env's images are those of its last rendered step. For a reward model queried every k-th step.
   */
  imageEvery?: number;
}

export interface VectorResetOptions {
  /** Sub-env i gets seed + i; or one seed per sub-env. */
  seed?: number | number[];
  options?: {
    /** Which sub-envs to reset (all when absent); the others keep their state and observation. */
    reset_mask?: ArrayLike<boolean | number>;
  };
}

/** Gymnasium-style vector info: arrays over sub-envs, with `_key` masks for entries that not all envs have. */
export interface VectorInfo {
  is_success: Uint8Array;
  /** Control steps into the current episode (after the step). */
  episode_step: Int32Array;
  /** Privileged stage progress of the returned state (the oracle ablation only); NaN where the task has none. */
  progress: Float64Array;
  /** The task's hand-designed dense reward for the step (the dense baseline only; 0 after a reset). */
  dense_reward: Float64Array;
  /** same-step mode only: last observations of episodes that ended this step, [N * obsDim]. */
  final_obs?: Float32Array;
  _final_obs?: Uint8Array;
  final_info?: { is_success: Uint8Array; episode_step: Int32Array };
  _final_info?: Uint8Array;
}

export interface VectorStepResult {
  /** [numEnvs * obsDim] */
  obs: Float32Array;
  /** Image observations by camera, each [numEnvs, size, size, 3], when the sub-envs have them. */
  images?: Record<string, Uint8Array>;
  rewards: Float64Array;
  terminated: Uint8Array;
  truncated: Uint8Array;
  info: VectorInfo;
}

const MAX_ENVS = 4096;
const MAX_WORKERS = 64;

export class VectorEnv {
  readonly numEnvs: number;
  readonly obsDim: number;
  readonly actDim: number;
  readonly obsNames: readonly string[];
  readonly episodeSteps: number;
  readonly singleObservationSpace: Box;
  readonly singleActionSpace: Box;
  readonly metadata: { autoreset_mode: AutoresetMode };
  /** Image observation cameras and size of every sub-env, if any. */
  readonly imageObs: { cameras: readonly string[]; size: number } | undefined;

  private readonly views: SharedViews;
  private readonly request: Int32Array;
  private failure: ProgressBridgeError | undefined;
  private readonly failed: Promise<never>;
  private closed = false;
  private busy = false;
  private everReset = false;

  private constructor(
    private readonly workers: Worker[],
    private readonly layout: SharedLayout,
    views: SharedViews,
    ready: Extract<WorkerMessage, { type: 'ready' }>,
    autoreset: AutoresetMode,
    private readonly copy: boolean,
    failed: Promise<never>,
    private readonly fail: (e: ProgressBridgeError) => void,
  ) {
    this.numEnvs = layout.numEnvs;
    this.obsDim = layout.obsDim;
    this.actDim = layout.actDim;
    this.obsNames = ready.obsNames;
    this.episodeSteps = ready.episodeSteps;
    this.singleObservationSpace = new Box([layout.obsDim], -Infinity, Infinity);
    this.singleActionSpace = new Box([layout.actDim], -1, 1);
    this.metadata = { autoreset_mode: autoreset };
    this.imageObs = ready.images;
    this.views = views;
    this.request = new Int32Array(layout.workers);
    this.failed = failed;
    this.failed.catch((e: ProgressBridgeError) => {
      this.failure = e;
    });
  }

  static async create(options: VectorEnvOptions): Promise<VectorEnv> {
    const numEnvs = options.numEnvs;
    if (!Number.isInteger(numEnvs) || numEnvs < 1 || numEnvs > MAX_ENVS) {
      throw new InvalidArgument('numEnvs', `must be an integer in [1, ${MAX_ENVS}], got ${numEnvs}`);
    }
    const cores = availableParallelism();
    const workerCount = options.workers ?? Math.min(numEnvs, cores);
    if (!Number.isInteger(workerCount) || workerCount < 1 || workerCount > Math.min(numEnvs, MAX_WORKERS)) {
      throw new InvalidArgument(
        'workers',
        `must be an integer in [1, min(numEnvs, ${MAX_WORKERS})] = [1, ${Math.min(numEnvs, MAX_WORKERS)}], got ${workerCount}`,
      );
    }
    const imageEvery = options.imageEvery ?? 1;
    if (!Number.isInteger(imageEvery) || imageEvery < 1 || imageEvery > 10_000) {
      throw new InvalidArgument('imageEvery', `must be an integer in [1, 10000], got ${imageEvery}`);
    }
    const autoreset = options.autoreset ?? 'next-step';
    if (!AUTORESET_MODES.includes(autoreset)) {
      throw new InvalidArgument(
        'autoreset',
        `must be one of ${AUTORESET_MODES.join(', ')}, got ${String(autoreset)}`,
      );
    }
    // Workers resolve paths against their own cwd; pass an absolute path so both agree.
    const task = /[\\/]|\.(ts|mts|js|mjs)$/.test(options.task) ? resolve(options.task) : options.task;

    let fail!: (e: ProgressBridgeError) => void;
    const failed = new Promise<never>((_, reject) => {
      fail = reject;
    });
    failed.catch(() => undefined);
    let firstFailure: ProgressBridgeError | undefined;
    const failOnce = (e: ProgressBridgeError): void => {
      firstFailure ??= e;
      fail(e);
    };
    const workers: Worker[] = [];
    const readies: Promise<Extract<WorkerMessage, { type: 'ready' }>>[] = [];
    for (let w = 0; w < workerCount; w++) {
      const [start, end] = workerSlice(numEnvs, workerCount, w);
      const init: WorkerInit = {
        task,
        envOptions: options.envOptions ?? {},
        imageEvery,
        autoreset,
        workerIndex: w,
        start,
        end,
      };
      const worker = new Worker(new URL('./worker-entry.js', import.meta.url), { workerData: init });
      workers.push(worker);
      readies.push(
        new Promise((resolveReady, rejectReady) => {
          worker.on('message', (msg: WorkerMessage) => {
            if (msg.type === 'ready') resolveReady(msg);
            else {
              const err = remoteError(w, msg);
              rejectReady(err);
              failOnce(err);
            }
          });
          worker.on('error', (err) => {
            const e = new WorkerFailed(w, err.message, { cause: err });
            rejectReady(e);
            failOnce(e);
          });
          worker.on('exit', (code) => {
            const e = new WorkerFailed(w, `thread exited with code ${code}`);
            rejectReady(e);
            failOnce(e);
          });
        }),
      );
    }
    let ready: Extract<WorkerMessage, { type: 'ready' }>[];
    try {
      ready = await Promise.all(readies);
    } catch (err) {
      await Promise.all(workers.map((w) => w.terminate()));
      // A task error inside a worker (unknown name, bad MJCF) keeps its own class and code for the caller.
      throw err instanceof WorkerFailed && err.cause instanceof ProgressBridgeError ? err.cause : err;
    }
    const images = ready[0]!.images;
    const layout: SharedLayout = {
      numEnvs,
      obsDim: ready[0]!.obsDim,
      actDim: ready[0]!.actDim,
      workers: workerCount,
      imageBytes: images ? images.cameras.length * images.size * images.size * 3 : 0,
      poseEnvs: Math.min(numEnvs, Math.max(0, Math.floor(options.poseEnvs ?? 0))),
      nbody: ready[0]!.nbody,
    };
    const buffer = new SharedArrayBuffer(sharedBytes(layout).total);
    const views = sharedViews(buffer, layout);
    for (const worker of workers) {
      const msg: AttachMessage = { type: 'attach', buffer, layout };
      worker.postMessage(msg);
    }
    const venv = new VectorEnv(
      workers,
      layout,
      views,
      ready[0]!,
      autoreset,
      options.copy ?? true,
      failed,
      failOnce,
    );
    if (firstFailure) throw firstFailure;
    return venv;
  }

  /** Resets all sub-envs (or those in `options.reset_mask`). */
  async reset(
    opts: VectorResetOptions = {},
  ): Promise<{ obs: Float32Array; images?: Record<string, Uint8Array>; info: VectorInfo }> {
    this.checkUsable();
    const v = this.views;
    const n = this.numEnvs;
    const mask = opts.options?.reset_mask;
    if (mask !== undefined && mask.length !== n) {
      throw new InvalidArgument(
        'options.reset_mask',
        `must have one entry per sub-env (${n}), got ${mask.length}`,
      );
    }
    const seed = opts.seed;
    if (Array.isArray(seed)) {
      if (seed.length !== n)
        throw new InvalidArgument('seed', `a seed list needs ${n} entries, got ${seed.length}`);
      seed.forEach((s, i) => checkSeed(`seed[${i}]`, s));
    } else if (seed !== undefined) {
      checkSeed('seed', seed);
      checkSeed('seed + numEnvs - 1', seed + n - 1);
    }
    for (let i = 0; i < n; i++) {
      v.resetMask[i] = mask === undefined || mask[i] ? 1 : 0;
      v.resetSeeds[i] = Array.isArray(seed) ? seed[i]! : seed !== undefined ? seed + i : NaN;
    }
    if (!this.everReset && mask !== undefined && !Array.from(mask).every(Boolean)) {
      throw new ResetNeeded('the first reset must reset every sub-env (no reset_mask, or all true)');
    }
    await this.run(Command.Reset);
    this.everReset = true;
    return { obs: this.out(v.obs), ...this.images(), info: this.info(false) };
  }

  /** Steps every sub-env with actions [numEnvs * actDim] (or an array of numEnvs arrays of actDim). */
  async step(actions: ArrayLike<number> | ArrayLike<ArrayLike<number>>): Promise<VectorStepResult> {
    this.checkUsable();
    if (!this.everReset) throw new ResetNeeded('step() called before reset(); call reset() first');
    const v = this.views;
    this.writeActions(actions);
    if (this.metadata.autoreset_mode === 'disabled') {
      for (let i = 0; i < this.numEnvs; i++) {
        if (v.terminated[i] || v.truncated[i]) {
          throw new ResetNeeded(
            `sub-env ${i} has ended and autoreset is disabled; reset it with reset({ options: { reset_mask } })`,
          );
        }
      }
    }
    await this.run(Command.Step);
    return {
      obs: this.out(v.obs),
      ...this.images(),
      rewards: this.copy ? v.rewards.slice() : v.rewards,
      terminated: this.copy ? v.terminated.slice() : v.terminated,
      truncated: this.copy ? v.truncated.slice() : v.truncated,
      info: this.info(this.metadata.autoreset_mode === 'same-step'),
    };
  }

  /** Stops the workers and frees their WASM memory. Safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (!this.failure && !this.busy) {
      try {
        await Promise.race([this.run(Command.Close, true), new Promise((r) => setTimeout(r, 2000))]);
      } catch {
        // Closing a broken env still terminates its threads below.
      }
    }
    this.fail(new EnvClosed('the vector env is closed'));
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  private writeActions(actions: ArrayLike<number> | ArrayLike<ArrayLike<number>>): void {
    packActions(actions, this.numEnvs, this.actDim, this.views.actions, true);
  }

  /** Per-camera image batches gathered from the shared buffer's per-env layout (always copies). */
  private images(): { images?: Record<string, Uint8Array> } {
    const spec = this.imageObs;
    if (!spec) return {};
    const per = spec.size * spec.size * 3;
    const stride = per * spec.cameras.length;
    const images: Record<string, Uint8Array> = {};
    spec.cameras.forEach((camera, c) => {
      const out = new Uint8Array(this.numEnvs * per);
      for (let i = 0; i < this.numEnvs; i++) {
        out.set(this.views.images.subarray(i * stride + c * per, i * stride + (c + 1) * per), i * per);
      }
      images[camera] = out;
    });
    return { images };
  }

  /**
   * Body poses of shown sub-env `env` (< poseEnvs) after the latest step: positions [nbody, 3] and quaternions
   * [nbody, 4] (w, x, y, z), world frame, copied out of shared memory.
   */
  poses(env: number): { pos: Float32Array; quat: Float32Array } {
    const { nbody, poseEnvs } = this.layout;
    if (!Number.isInteger(env) || env < 0 || env >= poseEnvs) {
      throw new InvalidArgument('env', `must be an integer in [0, ${poseEnvs - 1}] (poseEnvs), got ${env}`);
    }
    const pos = new Float32Array(nbody * 3);
    const quat = new Float32Array(nbody * 4);
    const src = this.views.poses;
    for (let b = 0, at = env * nbody * 7; b < nbody; b++, at += 7) {
      pos[3 * b] = src[at]!;
      pos[3 * b + 1] = src[at + 1]!;
      pos[3 * b + 2] = src[at + 2]!;
      for (let j = 0; j < 4; j++) quat[4 * b + j] = src[at + 3 + j]!;
    }
    return { pos, quat };
  }

  private out(a: Float32Array): Float32Array {
    return this.copy ? a.slice() : a;
  }

  private info(withFinal: boolean): VectorInfo {
    const v = this.views;
    const info: VectorInfo = {
      is_success: v.success.slice(),
      episode_step: v.episodeStep.slice(),
      progress: v.progress.slice(),
      dense_reward: v.dense.slice(),
    };
    if (withFinal) {
      info.final_obs = v.finalObs.slice();
      info._final_obs = v.final.slice();
      info.final_info = { is_success: v.finalSuccess.slice(), episode_step: v.finalEpisodeStep.slice() };
      info._final_info = v.final.slice();
    }
    return info;
  }

  private checkUsable(): void {
    if (this.failure) throw this.failure;
    if (this.closed) throw new EnvClosed('the vector env is closed');
    if (this.busy) throw new InvalidArgument('call', 'a reset() or step() is still running; await it first');
  }

  /** Wakes every worker with `command` and resolves when all have published it as done. */
  private async run(command: Command, closing = false): Promise<void> {
    const control = this.views.control;
    this.busy = !closing;
    try {
      const waits: Promise<unknown>[] = [];
      for (let w = 0; w < this.workers.length; w++) {
        const base = w * CONTROL_STRIDE;
        const req = ++this.request[w]!;
        control[base + COMMAND] = command;
        Atomics.store(control, base + REQUEST, req);
        Atomics.notify(control, base + REQUEST);
        waits.push(waitDone(control, base + DONE, req));
      }
      await Promise.race([Promise.all(waits), this.failed]);
    } finally {
      this.busy = false;
    }
  }
}

async function waitDone(control: Int32Array, index: number, req: number): Promise<void> {
  for (;;) {
    const current = Atomics.load(control, index);
    if (current === req) return;
    const r = Atomics.waitAsync(control, index, current);
    if (r.async) await r.value;
  }
}

/**
 * Copies a batch of actions, flat [numEnvs * actDim] or one row per sub-env, into `out`, checking the shape
 * (InvalidAction names what is wrong) and, with `checkFinite`, that every entry is a finite number.
 */
export function packActions(
  actions: ArrayLike<number> | ArrayLike<ArrayLike<number>>,
  n: number,
  d: number,
  out: Float32Array,
  checkFinite: boolean,
): void {
  const entry = checkFinite ? finite : (v: unknown): number => v as number;
  const nested = actions.length > 0 && typeof actions[0] === 'object' && actions[0] !== null;
  if (nested) {
    if (actions.length !== n)
      throw new InvalidAction(`actions has ${actions.length} rows; expected ${n} (one per sub-env)`);
    for (let i = 0; i < n; i++) {
      const row = (actions as ArrayLike<ArrayLike<number>>)[i]!;
      if (row.length !== d) throw new InvalidAction(`actions[${i}] has ${row.length} numbers; expected ${d}`);
      for (let j = 0; j < d; j++) out[i * d + j] = entry(row[j], i, j);
    }
    return;
  }
  if (actions.length !== n * d) {
    throw new InvalidAction(
      `actions has ${actions.length} numbers; expected numEnvs * actDim = ${n} * ${d} = ${n * d}`,
    );
  }
  const flat = actions as ArrayLike<number>;
  for (let k = 0; k < n * d; k++) out[k] = entry(flat[k], Math.floor(k / d), k % d);
}

function finite(v: unknown, env: number, index: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw new InvalidAction(
      `actions[${env}][${index}] is ${String(v)}; every entry must be a finite number`,
      index,
    );
  }
  return v;
}

function remoteError(w: number, msg: Extract<WorkerMessage, { type: 'error' }>): WorkerFailed {
  // Rebuild the worker's own error class where it is one of ours, so callers can branch on its code.
  const cause = errorFromCode(msg.code, msg.message);
  if (msg.stack) cause.stack = msg.stack;
  return new WorkerFailed(w, `${msg.code}: ${msg.message}`, { cause });
}
