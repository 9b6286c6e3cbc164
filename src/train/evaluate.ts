/**
 * The evaluation loop shared by `pbridge eval` (an ONNX file in onnxruntime-node) and `pbridge train --eval-every`
 * (the learner's own mean action): episodes from fixed seeds, one observation at a time, as a rig would run them.
 */
import type { ActionMode } from '../../robots/arm7/controller.ts';
import { InvertedPendulumEnv } from '../../envs/inverted-pendulum/env.ts';
import { makeEnv } from '../env/make.ts';
import { resolveTask } from '../env/registry.ts';
import { Rng } from '../env/rng.ts';
import { POLICY_INPUT, POLICY_OUTPUT } from '../onnx/index.ts';
import { InvalidArgument, OnnxSignatureMismatch } from '../sim/errors.ts';
import type { PpoLearner } from '../learn/ppo.ts';
/** A policy the loop can run: an ONNX file (OnnxPolicy) or a learner's mean action. */
export interface EvalPolicy {
  /** Named in signature errors and in the summary. */
  readonly path: string;
  readonly obsDim: number;
  readonly actDim: number;
  readonly metadata: Record<string, string>;
  /** obs: [batch, obs_dim] raw observations; [batch, act_dim] mean actions. */
  run(obs: Float32Array, batch: number): Promise<Float32Array> | Float32Array;
}

/**
 * A learner's current mean action as an EvalPolicy: what its exported policy.onnx computes (to 1e-5; the file also
 * clips to the action box, which the env does anyway).
 */
export function learnerEvalPolicy(learner: PpoLearner): EvalPolicy {
  return {
    path: 'learner',
    obsDim: learner.obsDim,
    actDim: learner.actDim,
    metadata: {},
    run: (obs, batch) => learner.predict(obs, batch, { deterministic: true }),
  };
}

/** The standard-benchmark env that is not a manipulation task; evaluated through the same loop. */
const PENDULUM = 'inverted-pendulum';

/** What the evaluation loop needs from an env: observations into a float32 buffer, one episode at a time. */
export interface EvalEnv {
  readonly name: string;
  readonly obsDim: number;
  readonly actDim: number;
  reset(seed: number, obs: Float32Array): void;
  step(action: Float32Array, obs: Float32Array): EvalStep;
  /** Control steps of the current episode. */
  readonly episodeStep: number;
  close(): void;
}

export interface EvalStep {
  reward: number;
  terminated: boolean;
  truncated: boolean;
  success: boolean;
}

export interface EvalSummary {
  env: string;
  policy: string;
  episodes: number;
  seed: number;
  success_rate: number;
  mean_return: number;
  std_return: number;
  mean_episode_length: number;
  env_steps: number;
  /** Control steps per second including the policy's inference (the rate a rig would see), one thread. */
  steps_per_s: number;
  /** Mean onnxruntime time per action, milliseconds. */
  policy_ms_per_step: number;
  /** Standard deviation per action dimension of the noise added to the mean action; null: the mean action. */
  action_std: number[] | null;
  /** The policy file's metadata_props (obs_dim, act_dim, env, seed, ... when the exporter wrote them). */
  policy_metadata: Record<string, string>;
  /** Episode e starts from seed + e. */
  per_episode: { seed: number; success: boolean; return: number; length: number }[];
}

/** An env by task name or module path, or the inverted pendulum. */
export async function openEvalEnv(spec: string, actionMode: ActionMode = 'ee_delta'): Promise<EvalEnv> {
  if (spec === PENDULUM) {
    const env = await InvertedPendulumEnv.create();
    return {
      name: PENDULUM,
      obsDim: env.obsDim,
      actDim: env.actDim,
      reset(seed, obs) {
        obs.set(env.reset(seed).obs);
      },
      step(action, obs) {
        const r = env.step(action);
        obs.set(r.obs);
        // No success predicate in the specification: balancing until the time limit is what counts as success.
        return { reward: r.reward, terminated: r.terminated, truncated: r.truncated, success: r.truncated };
      },
      get episodeStep() {
        return env.episodeStep;
      },
      close: () => env.close(),
    };
  }
  const task = await resolveTask(spec);
  const env = await makeEnv(task, { actionMode });
  let success = false;
  return {
    name: task.name,
    obsDim: env.obsDim,
    actDim: env.actDim,
    reset(seed, obs) {
      env.resetInto(obs, 0, seed);
      success = false;
    },
    step(action, obs) {
      const f = env.stepInto(action, obs, 0);
      // Success anywhere in the episode counts, as in `pbridge rollout` (a task may not end on success).
      success ||= f.success;
      return { reward: f.reward, terminated: f.terminated, truncated: f.truncated, success };
    },
    get episodeStep() {
      return env.episodeStep;
    },
    close: () => env.close(),
  };
}

/** Fails with ONNX_SIGNATURE_MISMATCH naming the dimension when the policy does not fit the env. */
export function checkPolicyFitsEnv(policy: EvalPolicy, env: EvalEnv): void {
  if (policy.obsDim !== env.obsDim) {
    throw new OnnxSignatureMismatch(
      policy.path,
      POLICY_INPUT,
      `obs_dim is ${policy.obsDim}, but env ${env.name} observes ${env.obsDim} values (expected ${POLICY_INPUT} float32 [B, ${env.obsDim}])`,
    );
  }
  if (policy.actDim !== env.actDim) {
    throw new OnnxSignatureMismatch(
      policy.path,
      POLICY_OUTPUT,
      `act_dim is ${policy.actDim}, but env ${env.name} takes ${env.actDim} action values (expected ${POLICY_OUTPUT} float32 [B, ${env.actDim}])`,
    );
  }
}

/**
 * Runs `episodes` episodes; episode e uses seed + e. With `actionStd` every action is the mean plus Gaussian noise
 * of that deviation per dimension (the env clips to its bounds, as in training), drawn from a stream of its own per
 * episode so one episode replays alone with its seed.
 */
export async function evaluatePolicy(
  policy: EvalPolicy,
  env: EvalEnv,
  episodes: number,
  seed: number,
  onEpisode?: (done: number, summary: EvalSummary) => void,
  actionStd?: readonly number[],
): Promise<EvalSummary> {
  checkPolicyFitsEnv(policy, env);
  if (actionStd && actionStd.length !== env.actDim) {
    throw new InvalidArgument(
      'action_std',
      `has ${actionStd.length} values; ${env.name} takes ${env.actDim} actions`,
    );
  }
  const obs = new Float32Array(env.obsDim);
  const action = new Float32Array(env.actDim);
  const summary: EvalSummary = {
    env: env.name,
    policy: policy.path,
    episodes,
    seed,
    success_rate: 0,
    mean_return: 0,
    std_return: 0,
    mean_episode_length: 0,
    env_steps: 0,
    steps_per_s: 0,
    policy_ms_per_step: 0,
    action_std: actionStd ? [...actionStd] : null,
    policy_metadata: policy.metadata,
    per_episode: [],
  };
  let policyMs = 0;
  const t0 = performance.now();
  for (let e = 0; e < episodes; e++) {
    env.reset(seed + e, obs);
    // A stream apart from the env's own (seeded with seed + e too), so the noise does not echo the reset draws.
    const noise = actionStd ? new Rng((seed + e) ^ 0x6e6f6973) : undefined;
    let ret = 0;
    let success = false;
    for (;;) {
      const tic = performance.now();
      action.set(await policy.run(obs, 1));
      policyMs += performance.now() - tic;
      if (noise && actionStd)
        for (let k = 0; k < action.length; k++) action[k] = action[k]! + actionStd[k]! * noise.normal();
      const r = env.step(action, obs);
      summary.env_steps++;
      ret += r.reward;
      success = r.success;
      if (r.terminated || r.truncated) break;
    }
    summary.per_episode.push({ seed: seed + e, success, return: ret, length: env.episodeStep });
    const eps = summary.per_episode;
    const n = eps.length;
    summary.success_rate = eps.filter((p) => p.success).length / n;
    summary.mean_return = eps.reduce((a, p) => a + p.return, 0) / n;
    summary.std_return = Math.sqrt(eps.reduce((a, p) => a + (p.return - summary.mean_return) ** 2, 0) / n);
    summary.mean_episode_length = eps.reduce((a, p) => a + p.length, 0) / n;
    const wall = performance.now() - t0;
    summary.steps_per_s = wall > 0 ? (summary.env_steps * 1000) / wall : 0;
    summary.policy_ms_per_step = policyMs / summary.env_steps;
    onEpisode?.(n, summary);
  }
  return summary;
}
