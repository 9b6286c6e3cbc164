/**
 * What a task declares. The env (src/env/env.ts) owns the simulation, the robot, the clock and Gymnasium's
 * bookkeeping; a task only says what the scene is, where objects start, what success means and how an expert
 * solves it. Users write their own tasks against this interface and load them by path (`--env ./my-task.ts`).
 */
import type { ArmController } from '../../robots/arm7/controller.ts';
import type { MjData, MjModel, Mujoco, ObjectKind } from '../sim/mujoco.ts';
import type { Rng } from './rng.ts';

/** What a task instance may touch: the model, the live data, the robot and id lookup. */
export interface TaskContext {
  readonly mj: Mujoco;
  readonly model: MjModel;
  readonly data: MjData;
  readonly robot: ArmController;
  /** Object id by name; a missing name throws with the list of names the model has. */
  id(kind: ObjectKind, name: string): number;
}

/**
 * A scripted expert: a closed-loop controller on privileged state. It writes an `ee_delta` action
 * (dx, dy, dz, gripper, each in [-1, 1]); the env converts it for other action modes.
 */
export interface Expert {
  reset(rng: Rng): void;
  act(out: Float32Array): void;
}

export interface TaskInstance {
  /** Names of the task's observation entries, appended after the robot's. */
  readonly obsNames: readonly string[];
  /** Places objects and goals for a new episode; the robot is already in its (randomised) ready pose. */
  reset(rng: Rng): void;
  /** Writes `obsNames.length` numbers at out[offset...]; mj_forward has run. */
  observe(out: Float32Array, offset: number): void;
  /** Success predicate on privileged state. */
  isSuccess(): boolean;
  /**
   * Hand-designed dense reward terms for baselines only (never used by progress shaping), written into `out`
   * by name; positive terms are named `reward_*`, negative ones `cost_*`.
   */
  denseTerms?(out: Record<string, number>): void;
  /** Progress in [0, 1] from privileged state (stages of the task), for the oracle ablation. */
  oracleProgress?(): number;
  /** A scripted expert for this instance. */
  expert(): Expert;
}

export interface TaskDefinition {
  /** Registry name (lowercase, dashes). */
  readonly name: string;
  /** The language instruction given to progress reward models. */
  readonly instruction: string;
  /** Absolute path of the scene MJCF (robot, objects, cameras `front`, `side`, `wrist`). */
  readonly scenePath: string;
  /** Time limit in control steps; reaching it truncates the episode. */
  readonly episodeSteps: number;
  /** Physics steps per control step (default 20: 0.04 s at the 2 ms timestep, a 25 Hz controller). */
  readonly frameSkip?: number;
  /** End the episode (terminated) when the success predicate first holds (default true). */
  readonly terminateOnSuccess?: boolean;
  /** Reward paid on the step the task succeeds (default 1); 0 on every other step. */
  readonly successReward?: number;
  /** Camera images to add to every observation (for pixel-based policies); none by default. */
  readonly images?: { cameras: readonly string[]; size: number };
  /** Builds the task's view of one simulation. Called once per env. */
  create(ctx: TaskContext): TaskInstance;
}

/** Type guard for task modules loaded from user paths. */
export function isTaskDefinition(x: unknown): x is TaskDefinition {
  if (typeof x !== 'object' || x === null) return false;
  const t = x as Record<string, unknown>;
  return (
    typeof t.name === 'string' &&
    typeof t.instruction === 'string' &&
    typeof t.scenePath === 'string' &&
    typeof t.episodeSteps === 'number' &&
    typeof t.create === 'function'
  );
}
