/**
 * Demonstrations from a task's scripted expert, for the behaviour-cloning warm start of `pbridge train --demos N`.
 * One env in this thread, episode e from seed `seed + e`; only successful episodes are kept, so the actor is not
 * taught the expert's rare failures.
 */
import { makeEnv } from '../env/make.ts';
import { resolveTask } from '../env/registry.ts';
import type { Demonstrations } from '../learn/behavior-cloning.ts';
import { InvalidArgument } from '../sim/errors.ts';

export interface ExpertDemonstrations extends Demonstrations {
  /** Episodes run. */
  episodes: number;
  /** Episodes that succeeded (and were kept). */
  successes: number;
}

/** Errors name `demos`, the option (`--demos`) that asked for the episodes. */
export async function collectExpertDemonstrations(
  taskSpec: string,
  episodes: number,
  seed: number,
): Promise<ExpertDemonstrations> {
  if (!Number.isInteger(episodes) || episodes < 1) {
    throw new InvalidArgument('demos', `must be a positive integer, got ${episodes}`);
  }
  const task = await resolveTask(taskSpec);
  const env = await makeEnv(task);
  try {
    const D = env.obsDim;
    const A = env.actDim;
    const obs: number[] = [];
    const actions: number[] = [];
    const epObs = new Float32Array(task.episodeSteps * D);
    const epAct = new Float32Array(task.episodeSteps * A);
    const cur = new Float32Array(D);
    const act = new Float32Array(A);
    let successes = 0;
    for (let e = 0; e < episodes; e++) {
      env.resetInto(cur, 0, seed + e);
      let t = 0;
      let success = false;
      for (;;) {
        env.expertAction(act);
        epObs.set(cur, t * D);
        epAct.set(act, t * A);
        t++;
        const f = env.stepInto(act, cur, 0);
        success ||= f.success;
        if (f.terminated || f.truncated) break;
      }
      if (!success) continue;
      successes++;
      for (let i = 0; i < t * D; i++) obs.push(epObs[i]!);
      for (let i = 0; i < t * A; i++) actions.push(epAct[i]!);
    }
    if (successes === 0) {
      throw new InvalidArgument(
        'demos',
        `the ${task.name} expert succeeded in none of ${episodes} episodes (seeds ${seed}..${seed + episodes - 1}); nothing to clone`,
      );
    }
    return {
      obs: Float32Array.from(obs),
      actions: Float32Array.from(actions),
      count: actions.length / A,
      episodes,
      successes,
    };
  } finally {
    env.close();
  }
}
