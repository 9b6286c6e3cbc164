/**
 * Recorded episodes with camera frames and progress labels: what the default progress model is trained on
 * (`pbridge demos`) and what reward models are judged on (`pbridge reward-eval`).
 *
 * Two policies produce them. `expert` is the task's scripted expert: successful demos whose frames are labelled
 * by time (t / T) and by the task's stages (`oracleProgress`). `perturbed` is the expert knocked off course from a
 * random step on (frozen, noisy, random or drifting actions): mostly failures, the negatives a success classifier
 * needs, and states a learning policy visits that demos never show. `random` acts uniformly at random from the
 * first step, as an untrained Gaussian policy does: the states early training lives in, which a model must score
 * low and steadily rather than with noise. `noisy` is the expert with Gaussian action noise from the first step, at
 * a noise level drawn per episode: the half-competent policies of mid-training, which get near the goal by
 * wandering routes and whose small steps forward and back are exactly what shaping has to score in the right order.
 * `policy` runs a trained policy (an ONNX file) with Gaussian action noise: the states a learner that is shaped by
 * a progress model actually visits, including those where the model is wrong in its favour, which no scripted
 * policy finds.
 */
import type { ManipulationEnv } from '../env/env.ts';
import type { TaskDefinition } from '../env/task.ts';
import { Rng } from '../env/rng.ts';
import { InvalidArgument } from '../sim/errors.ts';

export type DemoPolicy = 'expert' | 'perturbed' | 'random' | 'noisy' | 'policy';
export const DEMO_POLICIES: readonly DemoPolicy[] = ['expert', 'perturbed', 'random', 'noisy', 'policy'];

/** The acting half of a `policy` episode: a trained policy's mean action plus Gaussian noise of `std`. */
export interface DemoActor {
  /** Writes the mean action for the raw observation `obs` into `action`. */
  act(obs: Float32Array, action: Float32Array): Promise<void>;
  /** Standard deviation of the noise added to every action component (then clipped to [-1, 1]). */
  std: number;
}

/** How a perturbed episode leaves the expert's path, from its `start` step on. */
export type Perturbation = 'freeze' | 'noise' | 'random' | 'drift';
const PERTURBATIONS: readonly Perturbation[] = ['freeze', 'noise', 'random', 'drift'];
/** Standard deviation of the action noise of `noise` perturbations (actions live in [-1, 1]). */
const NOISE_STD = 0.7;
/**
 * Range of the per-episode noise standard deviation of `noisy` episodes: from an expert that still succeeds most
 * of the time to one that mostly wanders (uniform noise in [-1, 1] has a standard deviation of 0.58).
 */
export const NOISY_STD_RANGE = [0.15, 1.2] as const;

export interface RecordedEpisode {
  seed: number;
  policy: DemoPolicy;
  perturbation?: { kind: Perturbation; start: number };
  /** Action noise standard deviation of a `noisy` or `policy` episode. */
  noiseStd?: number;
  /** Control steps taken (T); there are T + 1 frames, the first at reset. */
  steps: number;
  /** The step at which success first held, or null; frames after it are the hold. */
  successStep: number | null;
  success: boolean;
  terminated: boolean;
  truncated: boolean;
  /** RGB frames [T + 1, cameras, size, size, 3], row 0 at the top. */
  frames: Uint8Array;
  /** Per frame: the task's stage-based progress in [0, 1]. */
  oracle: number[];
  /** Per frame: whether the success predicate holds. */
  successFrames: boolean[];
  /** Per step: the sparse reward. */
  rewards: number[];
}

export interface RecordOptions {
  cameras: readonly string[];
  size: number;
  /**
   * Steps to go on after the first success, holding still (no motion, gripper unchanged), so success states are seen more than
   * once: a model that must stay above a threshold for several steps needs to be shown them. Needs an env whose
   * task does not terminate on success (`holdEnvTask`). Default 0.
   */
  hold?: number;
  /** Required by `policy` episodes. */
  actor?: DemoActor;
}

/** The task as `recordEpisode` needs it for `hold` > 0: success no longer ends the episode. */
export function holdEnvTask(task: TaskDefinition): TaskDefinition {
  return { ...task, terminateOnSuccess: false };
}

/** Rolls out one episode from `seed` and records every frame. */
export async function recordEpisode(
  env: ManipulationEnv,
  policy: DemoPolicy,
  seed: number,
  options: RecordOptions,
): Promise<RecordedEpisode> {
  if (!DEMO_POLICIES.includes(policy)) {
    throw new InvalidArgument('policy', `must be one of ${DEMO_POLICIES.join(', ')}, got ${String(policy)}`);
  }
  const { cameras, size, actor } = options;
  if (policy === 'policy' && !actor) throw new InvalidArgument('actor', "is required by 'policy' episodes");
  if (actor && !(Number.isFinite(actor.std) && actor.std >= 0 && actor.std <= 10)) {
    throw new InvalidArgument('actor.std', `must be a number in [0, 10], got ${actor.std}`);
  }
  const hold = options.hold ?? 0;
  if (!Number.isInteger(hold) || hold < 0 || hold > 1000) {
    throw new InvalidArgument('hold', `must be an integer in [0, 1000], got ${hold}`);
  }
  if (hold > 0 && (env.task.terminateOnSuccess ?? true)) {
    throw new InvalidArgument(
      'hold',
      'needs an env whose task does not terminate on success (see holdEnvTask)',
    );
  }
  const frameBytes = cameras.length * size * size * 3;
  const maxFrames = env.episodeSteps + 1 + hold;
  const frames = new Uint8Array(maxFrames * frameBytes);
  const obs = new Float32Array(env.obsDim);
  const action = new Float32Array(env.actDim);
  const rng = new Rng(seed ^ 0x0bad5eed);
  // The knock comes somewhere in the middle 80% of what the unperturbed expert would take from this seed, so
  // failures happen at every stage of the task.
  const perturbation =
    policy === 'perturbed'
      ? {
          kind: PERTURBATIONS[Math.floor(rng.random() * PERTURBATIONS.length)]!,
          start: Math.floor(rng.uniform(0.1, 0.9) * expertLength(env, seed, obs, action)),
        }
      : undefined;
  const noiseStd =
    policy === 'noisy'
      ? rng.uniform(NOISY_STD_RANGE[0], NOISY_STD_RANGE[1])
      : policy === 'policy'
        ? actor!.std
        : 0;
  const drift = new Float32Array(env.actDim);
  for (let i = 0; i < drift.length; i++) drift[i] = rng.uniform(-1, 1);

  const oracle: number[] = [];
  const successFrames: boolean[] = [];
  const rewards: number[] = [];
  const capture = (t: number, success: boolean): void => {
    for (let c = 0; c < cameras.length; c++) {
      const img = env.renderer.render(env.data, cameras[c]!, size, size).rgb;
      frames.set(img, t * frameBytes + c * size * size * 3);
    }
    oracle.push(env.oracleProgress() ?? NaN);
    successFrames.push(success);
  };

  env.resetInto(obs, 0, seed);
  capture(0, false);
  let t = 0;
  let successStep: number | null = null;
  let terminated = false;
  let truncated = false;
  while (!terminated && !truncated) {
    if (successStep !== null) {
      // Hold still, but keep the gripper as the expert left it: opening or closing it could undo the success
      // (pick-place counts only a released cube).
      for (let i = 0; i < action.length - 1; i++) action[i] = 0;
    } else if (policy === 'random') {
      for (let i = 0; i < action.length; i++) action[i] = rng.uniform(-1, 1);
    } else if (policy === 'policy') {
      await actor!.act(obs, action);
      addNoise(action, noiseStd, rng);
    } else {
      env.expertAction(action);
      if (perturbation && t >= perturbation.start) perturb(perturbation.kind, action, drift, rng);
      if (policy === 'noisy') addNoise(action, noiseStd, rng);
    }
    const flags = env.stepInto(action, obs, 0);
    t++;
    rewards.push(flags.reward);
    if (flags.success && successStep === null) successStep = t;
    // With a hold the episode counts as ended by success `hold` steps after it first held.
    terminated = flags.terminated || (successStep !== null && t - successStep >= hold);
    truncated = !terminated && flags.truncated;
    capture(t, flags.success);
  }
  const success = successStep !== null;
  return {
    seed,
    policy,
    ...(perturbation ? { perturbation } : {}),
    ...(policy === 'noisy' || policy === 'policy' ? { noiseStd } : {}),
    steps: t,
    successStep,
    success,
    terminated,
    truncated,
    frames: frames.slice(0, (t + 1) * frameBytes),
    oracle,
    successFrames,
    rewards,
  };
}

/** Steps the expert takes from `seed` (physics only, no frames): the expert is deterministic given the seed. */
function expertLength(env: ManipulationEnv, seed: number, obs: Float32Array, action: Float32Array): number {
  env.resetInto(obs, 0, seed);
  for (let t = 1; ; t++) {
    const flags = env.stepInto(env.expertAction(action), obs, 0);
    if (flags.success || flags.terminated || flags.truncated) return t;
  }
}

function addNoise(action: Float32Array, std: number, rng: Rng): void {
  for (let i = 0; i < action.length; i++)
    action[i] = Math.max(-1, Math.min(1, action[i]! + std * rng.normal()));
}

function perturb(kind: Perturbation, action: Float32Array, drift: Float32Array, rng: Rng): void {
  for (let i = 0; i < action.length; i++) {
    let a: number;
    if (kind === 'freeze') a = 0;
    else if (kind === 'noise') a = action[i]! + NOISE_STD * rng.normal();
    else if (kind === 'random') a = rng.uniform(-1, 1);
    else a = drift[i]!;
    action[i] = Math.max(-1, Math.min(1, a));
  }
}

/** Time labels of a successful demo: frame t of T steps has progress t / T. */
export function timeLabels(steps: number): number[] {
  return Array.from({ length: steps + 1 }, (_, t) => (steps === 0 ? 1 : t / steps));
}
