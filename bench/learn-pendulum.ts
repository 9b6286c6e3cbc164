/**
 * Our PPO on our InvertedPendulum (Gymnasium InvertedPendulum-v5 specification, envs/inverted-pendulum/), with
 * CleanRL's `ppo_continuous_action.py` settings: 1 env, 2048 steps per rollout, 10 epochs of 32 minibatches,
 * lr 3e-4 annealed linearly, gamma 0.99, lambda 0.95, clip 0.2, observation and reward normalisation, actions
 * clipped to [-3, 3] before the env (CleanRL's ClipAction). Those are PpoLearner's defaults, so nothing is
 * overridden here. CleanRL publishes ~963 +- 22 episodic return at 1M steps on this task.
 *
 * One difference on purpose: CleanRL treats a time-limit truncation as termination; our learner bootstraps it.
 *
 *   node bin/run-ts.js bench/learn-pendulum.ts [--steps 1000000] [--seed 0] [--out policy.onnx]
 *
 * Prints a JSON summary on stdout (progress lines on stderr): mean episodic return over the last 20 training
 * episodes, that figure every 100k steps, a deterministic evaluation of the final policy, wall time, env steps/s
 * and the share of wall time in learner updates.
 */
import { parseArgs } from 'node:util';
import {
  ACT_DIM,
  ACTION_HIGH,
  ACTION_LOW,
  InvertedPendulumEnv,
  OBS_DIM,
  OBS_NAMES,
} from '../envs/inverted-pendulum/env.ts';
import { exportLearnerPolicy } from '../src/learn/export.ts';
import { PpoLearner } from '../src/learn/ppo.ts';

const { values } = parseArgs({
  options: {
    steps: { type: 'string', default: '1000000' },
    seed: { type: 'string', default: '0' },
    out: { type: 'string' },
    'curve-every': { type: 'string', default: '100000' },
    'eval-episodes': { type: 'string', default: '10' },
  },
});
const totalSteps = Number(values.steps);
const seed = Number(values.seed);
const curveEvery = Number(values['curve-every']);
const evalEpisodes = Number(values['eval-episodes']);
for (const [name, v] of Object.entries({ totalSteps, seed, curveEvery, evalEpisodes })) {
  if (!Number.isInteger(v) || v < 0) throw new Error(`${name} must be a non-negative integer, got ${v}`);
}

/** Mean of the last `n` entries (fewer if there are fewer); NaN for none. */
function meanOfLast(xs: readonly number[], n: number): number {
  const tail = xs.slice(-n);
  return tail.length ? tail.reduce((a, b) => a + b, 0) / tail.length : NaN;
}

const clip = (v: number): number => (v < ACTION_LOW ? ACTION_LOW : v > ACTION_HIGH ? ACTION_HIGH : v);

const env = await InvertedPendulumEnv.create();
const learner = new PpoLearner({ obsDim: OBS_DIM, actDim: ACT_DIM, numEnvs: 1, seed });
const T = learner.config.numSteps;
// As CleanRL: whole rollouts only, so 1M asks for 488 updates = 999,424 steps.
const iterations = Math.floor(totalSteps / T);

const action = new Float64Array(ACT_DIM);
const reward = new Float64Array(1);
const terminated = new Uint8Array(1);
const truncated = new Uint8Array(1);
const returns: number[] = [];
const lengths: number[] = [];
const curve: { step: number; mean_return_last20: number; episodes: number; wall_s: number }[] = [];
let obs = env.reset(seed).obs;
let episodeReturn = 0;
let step = 0;
let nextCurve = curveEvery;
let actMs = 0;
let envMs = 0;
let updateMs = 0;
const t0 = performance.now();

for (let it = 0; it < iterations; it++) {
  for (let t = 0; t < T; t++) {
    let tic = performance.now();
    const { actions } = learner.act(obs);
    action[0] = clip(actions[0]!);
    let toc = performance.now();
    actMs += toc - tic;
    const res = env.step(action);
    episodeReturn += res.reward;
    reward[0] = res.reward;
    terminated[0] = res.terminated ? 1 : 0;
    truncated[0] = res.truncated ? 1 : 0;
    const finalObs = res.obs;
    if (res.terminated || res.truncated) {
      returns.push(episodeReturn);
      lengths.push(env.episodeStep);
      episodeReturn = 0;
      obs = env.reset().obs;
    } else {
      obs = res.obs;
    }
    tic = performance.now();
    envMs += tic - toc;
    learner.observe({ rewards: reward, terminated, truncated, finalObs });
    toc = performance.now();
    actMs += toc - tic;
    step++;
    if (curveEvery > 0 && step >= nextCurve) {
      const wall = (performance.now() - t0) / 1000;
      curve.push({
        step,
        mean_return_last20: meanOfLast(returns, 20),
        episodes: returns.length,
        wall_s: wall,
      });
      console.error(
        `step ${step}: mean return (last 20) ${meanOfLast(returns, 20).toFixed(1)}, ${returns.length} episodes, ${wall.toFixed(0)} s`,
      );
      nextCurve += curveEvery;
    }
  }
  const tic = performance.now();
  learner.update(obs, it / iterations);
  updateMs += performance.now() - tic;
}
const wallS = (performance.now() - t0) / 1000;

// The deployed behaviour: the mean action, from fixed seeds that training never used.
const evalReturns: number[] = [];
for (let e = 0; e < evalEpisodes; e++) {
  let o = env.reset(1_000_000 + e).obs;
  let ret = 0;
  for (;;) {
    action[0] = clip(learner.predict(o, 1, { deterministic: true })[0]!);
    const r = env.step(action);
    ret += r.reward;
    o = r.obs;
    if (r.terminated || r.truncated) break;
  }
  evalReturns.push(ret);
}

if (values.out) {
  await exportLearnerPolicy(learner, values.out, {
    obsNames: OBS_NAMES,
    actNames: ['cart.force'],
    actionBounds: { low: ACTION_LOW, high: ACTION_HIGH },
    metadata: { env: 'inverted-pendulum', seed: String(seed), step: String(step) },
  });
}
env.close();

console.log(
  JSON.stringify(
    {
      bench: 'learn-pendulum',
      env: 'inverted-pendulum (Gymnasium InvertedPendulum-v5 specification)',
      seed,
      env_steps: step,
      updates: learner.updates,
      episodes: returns.length,
      final_mean_return_last20: meanOfLast(returns, 20),
      final_mean_length_last20: meanOfLast(lengths, 20),
      deterministic_eval: {
        episodes: evalEpisodes,
        mean_return: meanOfLast(evalReturns, evalEpisodes),
        min_return: evalReturns.length ? Math.min(...evalReturns) : NaN,
      },
      curve,
      wall_s: wallS,
      env_steps_per_s: step / wallS,
      time_share: {
        learner_update: updateMs / 1000 / wallS,
        learner_act_observe: actMs / 1000 / wallS,
        env_step: envMs / 1000 / wallS,
      },
      reference: 'CleanRL ppo_continuous_action InvertedPendulum: ~963 +- 22 at 1M steps',
      config: learner.config,
      ...(values.out ? { policy: values.out } : {}),
    },
    null,
    2,
  ),
);
