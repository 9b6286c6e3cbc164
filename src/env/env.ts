/**
 * One manipulation env with Gymnasium semantics over a task definition.
 *
 * - `reset({ seed, options })` -> `{ obs, info }`; a seed re-seeds the env's generator, no seed continues it
 *   (the first reset without a seed draws one from the OS, as Gymnasium does).
 * - `step(action)` -> `{ obs, reward, terminated, truncated, info }`; `terminated` is a true end of the task
 *   (success, when the task says success ends it), `truncated` is the time limit. They never both hold.
 * - Actions are validated (length, NaN, Inf: `InvalidAction` naming the index) and then clipped to [-1, 1]:
 *   out-of-range values are legal and saturate, as a real servo command would.
 * - `info.is_success`, and every reward term under `reward/<term>`: `reward/sparse` is the reward itself;
 *   hand-designed dense terms are logged for baselines only.
 *
 * Same seed, same actions: same observations, bit for bit (MuJoCo is deterministic on one build).
 */
import {
  ArmController,
  type ActionMode,
  ACTION_MODES,
  ROBOT_OBS_NAMES,
} from '../../robots/arm7/controller.ts';
import { EnvClosed, InvalidAction, InvalidArgument, ResetNeeded, UnknownCamera } from '../sim/errors.ts';
import {
  MAX_IMAGE_SIZE,
  MIN_IMAGE_SIZE,
  Renderer,
  type CameraSpec,
  type Frame,
  type RenderOptions,
} from '../render/renderer.ts';
import type { MjData, MjModel, Mujoco } from '../sim/mujoco.ts';
import { getState, namesOf, requireId, setState } from '../sim/mujoco.ts';
import { entropySeed, Rng } from './rng.ts';
import { Box, Dict } from './spaces.ts';
import type { Expert, TaskContext, TaskDefinition, TaskInstance } from './task.ts';

export interface EnvOptions {
  /** How actions drive the arm (default `ee_delta`). */
  actionMode?: ActionMode;
  /** Overrides the task's time limit (control steps). */
  episodeSteps?: number;
  /** Overrides the task's physics steps per control step. */
  frameSkip?: number;
  /** Half-width (radians) of the uniform noise added to each arm joint of the ready pose at reset. */
  robotNoise?: number;
  /**
   * Camera images to return with every observation (`images.<camera>`, RGB uint8 [size, size, 3]); overrides
   * the task's own declaration. Images cost rendering time, so none are made unless declared or requested.
   */
  images?: ImageObservation;
}

/** Which cameras to render into observations, and how large (square images, pixels). */
export interface ImageObservation {
  cameras: readonly string[];
  size: number;
}

export interface ResetOptions {
  seed?: number;
}

export type Info = Record<string, number | boolean>;

export interface StepResult {
  obs: Float32Array;
  /** Camera images by name, when the task declares or the options request image observations. */
  images?: Record<string, Uint8Array>;
  reward: number;
  terminated: boolean;
  truncated: boolean;
  info: Info;
}

/** What `stepInto` reports; observations go straight into the caller's buffer. */
export interface StepFlags {
  reward: number;
  terminated: boolean;
  truncated: boolean;
  success: boolean;
}

const DEFAULT_FRAME_SKIP = 20;
const DEFAULT_ROBOT_NOISE = 0.02;
const MAX_SEED = 2 ** 32 - 1;

/** Validates a Gymnasium seed: an integer in [0, 2^32 - 1]. */
export function checkSeed(field: string, seed: unknown): number {
  if (typeof seed !== 'number' || !Number.isInteger(seed) || seed < 0 || seed > MAX_SEED) {
    throw new InvalidArgument(field, `must be an integer in [0, ${MAX_SEED}], got ${String(seed)}`);
  }
  return seed;
}

export class ManipulationEnv {
  readonly task: TaskDefinition;
  readonly actionMode: ActionMode;
  readonly episodeSteps: number;
  readonly frameSkip: number;
  readonly observationSpace: Box;
  readonly actionSpace: Box;
  /** Names of the observation entries, robot first. */
  readonly obsNames: readonly string[];
  readonly robot: ArmController;
  readonly data: MjData;

  private readonly instance: TaskInstance;
  private readonly action: Float32Array;
  private readonly eeAction = new Float32Array(4);
  private readonly terms: Record<string, number> = {};
  private readonly robotNoise: number;
  /** Image observations, when the task declares them or the options request them. */
  readonly imageObs: ImageObservation | undefined;
  /** One Box(uint8, [size, size, 3]) per image observation, keyed `images.<camera>`. */
  readonly imageSpace: Dict | undefined;
  private rendererInstance: Renderer | undefined;
  private rng: Rng | undefined;
  private expertRng: Rng | undefined;
  private expertPolicy: Expert | undefined;
  private elapsed = 0;
  private needsReset = true;
  private everReset = false;
  private closed = false;

  /**
   * `model` may be shared by many envs of one thread (compile once, one MjData each); the env owns only its
   * data and its controller's heap buffers.
   */
  constructor(
    readonly mj: Mujoco,
    readonly model: MjModel,
    task: TaskDefinition,
    options: EnvOptions = {},
  ) {
    this.task = task;
    this.actionMode = options.actionMode ?? 'ee_delta';
    if (!ACTION_MODES.includes(this.actionMode)) {
      throw new InvalidArgument(
        'actionMode',
        `must be one of ${ACTION_MODES.join(', ')}, got ${String(this.actionMode)}`,
      );
    }
    this.episodeSteps = positiveInt('episodeSteps', options.episodeSteps ?? task.episodeSteps);
    this.frameSkip = positiveInt('frameSkip', options.frameSkip ?? task.frameSkip ?? DEFAULT_FRAME_SKIP);
    this.robotNoise = options.robotNoise ?? DEFAULT_ROBOT_NOISE;
    if (!(this.robotNoise >= 0 && this.robotNoise <= 0.5)) {
      throw new InvalidArgument('robotNoise', `must be in [0, 0.5] radians, got ${this.robotNoise}`);
    }
    // Heap buffers first, MjData last: any later allocation would invalidate typed-array views taken earlier.
    this.robot = new ArmController(mj, model);
    this.data = new mj.MjData(model);
    const ctx: TaskContext = {
      mj,
      model,
      data: this.data,
      robot: this.robot,
      id: (kind, name) => requireId(mj, model, kind, name),
    };
    this.instance = task.create(ctx);
    this.obsNames = [...ROBOT_OBS_NAMES, ...this.instance.obsNames];
    this.observationSpace = new Box([this.obsNames.length], -Infinity, Infinity);
    this.imageObs = options.images ?? task.images;
    if (this.imageObs) {
      const { cameras, size } = this.imageObs;
      if (!Array.isArray(cameras) || cameras.length === 0) {
        throw new InvalidArgument('images.cameras', 'must name at least one camera');
      }
      if (!Number.isInteger(size) || size < MIN_IMAGE_SIZE || size > MAX_IMAGE_SIZE) {
        throw new InvalidArgument(
          'images.size',
          `must be an integer in [${MIN_IMAGE_SIZE}, ${MAX_IMAGE_SIZE}], got ${size}`,
        );
      }
      const valid = namesOf(mj, model, 'camera');
      for (const c of cameras) if (!valid.includes(c)) throw new UnknownCamera(`"${c}"`, valid);
      const spaces: Record<string, Box> = {};
      for (const c of cameras) spaces[`images.${c}`] = new Box([size, size, 3], 0, 255, 'uint8');
      this.imageSpace = new Dict(spaces);
    } else {
      this.imageSpace = undefined;
    }
    const actDim = this.robot.actionDim(this.actionMode);
    this.actionSpace = new Box([actDim], -1, 1);
    this.action = new Float32Array(actDim);
  }

  get obsDim(): number {
    return this.obsNames.length;
  }

  get actDim(): number {
    return this.action.length;
  }

  /** Control steps taken in the current episode. */
  get episodeStep(): number {
    return this.elapsed;
  }

  reset(options: ResetOptions = {}): { obs: Float32Array; images?: Record<string, Uint8Array>; info: Info } {
    const obs = new Float32Array(this.obsDim);
    const info = this.resetInto(obs, 0, options.seed);
    return this.imageObs ? { obs, images: this.renderImages(), info } : { obs, info };
  }

  /**
   * Renders one camera at the current state (a copy: callers may keep it). For people and tools; image
   * observations use `options.images` instead.
   */
  render(camera: CameraSpec, width: number, height = width, options?: RenderOptions): Frame {
    this.checkOpen();
    const frame = this.renderer.render(this.data, camera, width, height, options);
    return {
      width: frame.width,
      height: frame.height,
      rgb: frame.rgb.slice(),
      ...(frame.depth ? { depth: frame.depth.slice() } : {}),
      ...(frame.segmentation ? { segmentation: frame.segmentation.slice() } : {}),
    };
  }

  /** The renderer of this env (created on first use: envs without cameras in use never pay for it). */
  get renderer(): Renderer {
    this.rendererInstance ??= new Renderer(this.mj, this.model);
    return this.rendererInstance;
  }

  /** Renders the image observations into fresh arrays. */
  private renderImages(): Record<string, Uint8Array> {
    const spec = this.imageObs!;
    const images: Record<string, Uint8Array> = {};
    for (const camera of spec.cameras)
      images[camera] = this.renderer.render(this.data, camera, spec.size, spec.size).rgb.slice();
    return images;
  }

  /** `reset` writing the observation into `out` at `offset` (no allocation for the caller's buffers). */
  resetInto(out: Float32Array, offset: number, seed?: number): Info {
    this.checkOpen();
    if (seed !== undefined) {
      checkSeed('seed', seed);
      this.rng = new Rng(seed);
      this.expertRng = new Rng(seed ^ 0x5eed5eed);
    } else if (!this.rng) {
      const s = entropySeed();
      this.rng = new Rng(s);
      this.expertRng = new Rng(s ^ 0x5eed5eed);
    }
    const { mj, model, data } = this;
    const rng = this.rng;
    mj.mj_resetData(model, data);
    const noise = this.robotNoise;
    this.robot.resetPose(data, () => rng.uniform(-noise, noise));
    mj.mj_forward(model, data);
    this.instance.reset(rng);
    mj.mj_forward(model, data);
    if (this.expertPolicy) this.expertPolicy.reset(this.expertRng!);
    this.elapsed = 0;
    this.needsReset = false;
    this.everReset = true;
    this.observeInto(out, offset);
    return { is_success: false, step: 0 };
  }

  step(action: ArrayLike<number>): StepResult {
    const obs = new Float32Array(this.obsDim);
    const flags = this.stepInto(action, obs, 0);
    return {
      obs,
      ...(this.imageObs ? { images: this.renderImages() } : {}),
      reward: flags.reward,
      terminated: flags.terminated,
      truncated: flags.truncated,
      info: this.info(flags),
    };
  }

  /** The info dict of the step that produced `flags`. */
  info(flags: StepFlags): Info {
    const info: Info = { is_success: flags.success, step: this.elapsed, 'reward/sparse': flags.reward };
    for (const [k, v] of Object.entries(this.terms)) info[`reward/${k}`] = v;
    return info;
  }

  /** `step` writing the observation into `out` at `offset`; returns reward and flags. */
  stepInto(action: ArrayLike<number>, out: Float32Array, offset: number): StepFlags {
    this.checkOpen();
    if (this.needsReset) {
      throw new ResetNeeded(
        this.everReset
          ? 'the episode has ended (terminated or truncated); call reset() before step()'
          : 'step() called before reset(); call reset() first',
      );
    }
    this.validateAndClip(action);
    const { mj, model, data } = this;
    this.robot.apply(data, this.action, this.actionMode);
    for (let i = 0; i < this.frameSkip; i++) mj.mj_step(model, data);
    // mj_step leaves positions one integration behind derived quantities; refresh what tasks, the controller
    // and cameras read (kinematics, centre-of-mass quantities for Jacobians, camera poses) without a full
    // mj_forward.
    mj.mj_kinematics(model, data);
    mj.mj_comPos(model, data);
    // Cameras and lights follow their bodies: image observations and renders must see this step's poses.
    mj.mj_camlight(model, data);
    this.elapsed++;
    const success = this.instance.isSuccess();
    const reward = success ? (this.task.successReward ?? 1) : 0;
    const terminated = success && (this.task.terminateOnSuccess ?? true);
    const truncated = !terminated && this.elapsed >= this.episodeSteps;
    if (this.instance.denseTerms) this.instance.denseTerms(this.terms);
    this.observeInto(out, offset);
    if (terminated || truncated) this.needsReset = true;
    return { reward, terminated, truncated, success };
  }

  /**
   * The sum of the task's dense terms for the latest step (0 for tasks without them): the hand-designed reward
   * of the `dense` baseline, never part of progress shaping.
   */
  denseReward(): number {
    let sum = 0;
    for (const v of Object.values(this.terms)) sum += v;
    return sum;
  }

  /** The scripted expert's action for the current state, in this env's action mode. */
  expertAction(out: Float32Array = new Float32Array(this.actDim)): Float32Array {
    this.checkOpen();
    if (!this.expertPolicy) {
      this.expertPolicy = this.instance.expert();
      this.expertPolicy.reset(this.expertRng ?? new Rng(0));
    }
    this.expertPolicy.act(this.eeAction);
    if (this.actionMode === 'ee_delta') out.set(this.eeAction);
    else this.robot.eeToJointAction(this.data, this.eeAction, out);
    return out;
  }

  /** Privileged progress in [0, 1] if the task defines it (for the oracle ablation), else undefined. */
  oracleProgress(): number | undefined {
    return this.instance.oracleProgress?.();
  }

  isSuccess(): boolean {
    return this.instance.isSuccess();
  }

  /** A snapshot of the full simulation state and episode clock. */
  snapshot(): { state: Float64Array; step: number } {
    return { state: getState(this.mj, this.model, this.data), step: this.elapsed };
  }

  restore(snapshot: { state: Float64Array; step: number }): void {
    setState(this.mj, this.model, this.data, snapshot.state);
    this.elapsed = snapshot.step;
    this.needsReset = false;
  }

  observeInto(out: Float32Array, offset: number): void {
    const o = this.robot.observe(this.data, out, offset);
    this.instance.observe(out, o);
  }

  /** Frees this env's WASM memory (not the shared model). Safe to call twice. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.data.delete();
    this.robot.dispose();
    this.rendererInstance = undefined;
  }

  private validateAndClip(action: ArrayLike<number>): void {
    const dim = this.action.length;
    if (action === null || typeof action !== 'object' || typeof action.length !== 'number') {
      throw new InvalidAction(`action must be an array of ${dim} numbers, got ${typeof action}`);
    }
    if (action.length !== dim) {
      throw new InvalidAction(
        `action has ${action.length} numbers; the ${this.actionMode} action space of ${this.task.name} has ${dim}`,
      );
    }
    for (let i = 0; i < dim; i++) {
      const v = action[i];
      if (typeof v !== 'number' || !Number.isFinite(v)) {
        throw new InvalidAction(`action[${i}] is ${String(v)}; every entry must be a finite number`, i);
      }
      this.action[i] = v < -1 ? -1 : v > 1 ? 1 : v;
    }
  }

  private checkOpen(): void {
    if (this.closed) throw new EnvClosed('this env is closed');
  }
}

function positiveInt(field: string, v: number): number {
  if (!Number.isInteger(v) || v < 1 || v > 1_000_000) {
    throw new InvalidArgument(field, `must be an integer in [1, 1000000], got ${v}`);
  }
  return v;
}
