/**
 * Building envs: one WASM module per thread and one compiled MjModel per scene per thread, shared by every
 * env of that scene (a mesh-heavy model takes seconds to compile; MjData is the only per-env state).
 */
import { loadMujoco, modelFromFile, type MjModel, type Mujoco } from '../sim/mujoco.ts';
import { ManipulationEnv, type EnvOptions } from './env.ts';
import { resolveTask } from './registry.ts';
import type { TaskDefinition } from './task.ts';

const models = new Map<string, MjModel>();

/** The compiled model of a scene file, compiled on first use in this thread. */
export function sharedModel(mj: Mujoco, scenePath: string): MjModel {
  let model = models.get(scenePath);
  if (!model) {
    model = modelFromFile(mj, scenePath);
    models.set(scenePath, model);
  }
  return model;
}

/** Creates an env of a task given by name, path or definition. */
export async function makeEnv(
  task: string | TaskDefinition,
  options: EnvOptions = {},
): Promise<ManipulationEnv> {
  const mj = await loadMujoco();
  const def = typeof task === 'string' ? await resolveTask(task) : task;
  return new ManipulationEnv(mj, sharedModel(mj, def.scenePath), def, options);
}
