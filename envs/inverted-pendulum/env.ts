/**
 * InvertedPendulum written by us to Gymnasium's published InvertedPendulum-v5 specification, as a standard task on
 * which our PPO can be compared with published results (CleanRL reports ~963 +- 22 at 1M steps).
 *
 * - obs [4] float64: [cart position, pole angle, cart velocity, pole angular velocity] (qpos then qvel).
 * - action [1]: motor control in [-3, 3] (x gear 100 = force in N along +x); clipped to that range, as MuJoCo
 *   itself clamps a control-limited actuator. NaN or Inf is an `InvalidAction`.
 * - Each step advances 2 physics steps of 0.02 s (frame skip 2: 0.04 s of simulated time).
 * - reward 1 while the pole is up, 0 on the step that ends the episode (v5; v4 paid 1 there too).
 * - terminated when |pole angle| > 0.2 rad or an observation is not finite; truncated at 1000 steps (never both).
 * - reset: qpos and qvel each drawn uniformly within +-0.01 of zero from our seeded Rng (same seed, same episode;
 *   the numbers differ from NumPy's generator, the distribution does not).
 *
 * Not a manipulation task (no arm, cameras or progress model), so it stands alone instead of going through
 * ManipulationEnv and the task registry.
 */
import { fileURLToPath } from 'node:url';
import { checkSeed } from '../../src/env/env.ts';
import { entropySeed, Rng } from '../../src/env/rng.ts';
import { EnvClosed, InvalidAction, ResetNeeded } from '../../src/sim/errors.ts';
import { loadMujoco, modelFromFile, type MjData, type MjModel, type Mujoco } from '../../src/sim/mujoco.ts';

export const SCENE_PATH = fileURLToPath(new URL('./scene.xml', import.meta.url));
export const OBS_NAMES = ['cart.x', 'pole.angle', 'cart.vx', 'pole.angvel'] as const;
export const OBS_DIM = 4;
export const ACT_DIM = 1;
export const ACTION_LOW = -3;
export const ACTION_HIGH = 3;
export const FRAME_SKIP = 2;
export const EPISODE_STEPS = 1000;
/** |pole angle| beyond which the episode terminates (radians). */
export const MAX_POLE_ANGLE = 0.2;
/** Half-width of the uniform reset noise on every qpos and qvel entry. */
export const RESET_NOISE = 0.01;

/** Compiled once per thread, shared by every env in it (MjData is the only per-env state). */
let sharedModel: MjModel | undefined;

export interface PendulumStep {
  /** [4] the observation after the step (a fresh array). */
  obs: Float64Array;
  reward: number;
  terminated: boolean;
  truncated: boolean;
}

export class InvertedPendulumEnv {
  readonly obsDim = OBS_DIM;
  readonly actDim = ACT_DIM;
  readonly episodeSteps: number;
  readonly mj: Mujoco;
  readonly model: MjModel;
  readonly data: MjData;
  private rng: Rng | undefined;
  private elapsed = 0;
  private needsReset = true;
  private closed = false;

  /** Loads the WASM module and compiles the scene (once per thread; later envs reuse the model). */
  static async create(options: { episodeSteps?: number } = {}): Promise<InvertedPendulumEnv> {
    const mj = await loadMujoco();
    sharedModel ??= modelFromFile(mj, SCENE_PATH);
    return new InvertedPendulumEnv(mj, sharedModel, options);
  }

  constructor(mj: Mujoco, model: MjModel, options: { episodeSteps?: number } = {}) {
    if (model.nq !== 2 || model.nv !== 2 || model.nu !== 1) {
      throw new RangeError(
        `the inverted pendulum needs nq 2, nv 2, nu 1; this model has ${model.nq}, ${model.nv}, ${model.nu}`,
      );
    }
    this.mj = mj;
    this.model = model;
    this.data = new mj.MjData(model);
    this.episodeSteps = options.episodeSteps ?? EPISODE_STEPS;
  }

  /** Control steps taken in the current episode. */
  get episodeStep(): number {
    return this.elapsed;
  }

  /** Starts an episode. A seed re-seeds the env's generator; no seed continues it (or draws one from the OS). */
  reset(seed?: number): { obs: Float64Array } {
    this.checkOpen();
    if (seed !== undefined) this.rng = new Rng(checkSeed('seed', seed));
    this.rng ??= new Rng(entropySeed());
    const rng = this.rng;
    const { mj, model, data } = this;
    mj.mj_resetData(model, data);
    // Views re-taken after every WASM call that may allocate: a grown heap leaves old views empty.
    const qpos = data.qpos;
    for (let i = 0; i < 2; i++) qpos[i] = rng.uniform(-RESET_NOISE, RESET_NOISE);
    const qvel = data.qvel;
    for (let i = 0; i < 2; i++) qvel[i] = rng.uniform(-RESET_NOISE, RESET_NOISE);
    mj.mj_forward(model, data);
    this.elapsed = 0;
    this.needsReset = false;
    return { obs: this.observe() };
  }

  /**
   * Puts the pendulum in an exact state [x, angle], [vx, angvel] and restarts the episode clock: for tests and for
   * replaying a state, where reset noise would get in the way.
   */
  setState(qpos: readonly [number, number], qvel: readonly [number, number]): Float64Array {
    this.checkOpen();
    const { mj, model, data } = this;
    mj.mj_resetData(model, data);
    data.qpos.set(qpos);
    data.qvel.set(qvel);
    mj.mj_forward(model, data);
    this.elapsed = 0;
    this.needsReset = false;
    return this.observe();
  }

  step(action: ArrayLike<number>): PendulumStep {
    this.checkOpen();
    if (this.needsReset) throw new ResetNeeded('the episode has ended or never started; call reset() first');
    if (action.length !== ACT_DIM)
      throw new InvalidAction(`action has ${action.length} numbers; this env takes ${ACT_DIM}`);
    const a = action[0]!;
    if (!Number.isFinite(a)) throw new InvalidAction(`action[0] is ${a}; it must be a finite number`, 0);
    const { mj, model, data } = this;
    data.ctrl[0] = a < ACTION_LOW ? ACTION_LOW : a > ACTION_HIGH ? ACTION_HIGH : a;
    for (let i = 0; i < FRAME_SKIP; i++) mj.mj_step(model, data);
    this.elapsed++;
    const obs = this.observe();
    const terminated = !obs.every(Number.isFinite) || Math.abs(obs[1]!) > MAX_POLE_ANGLE;
    const truncated = !terminated && this.elapsed >= this.episodeSteps;
    if (terminated || truncated) this.needsReset = true;
    return { obs, reward: terminated ? 0 : 1, terminated, truncated };
  }

  /** Frees this env's MjData (not the shared model). Safe to call twice. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.data.delete();
  }

  private observe(): Float64Array {
    const qpos = this.data.qpos;
    const qvel = this.data.qvel;
    return Float64Array.of(qpos[0]!, qpos[1]!, qvel[0]!, qvel[1]!);
  }

  private checkOpen(): void {
    if (this.closed) throw new EnvClosed('this env is closed');
  }
}
