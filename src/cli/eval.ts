/**
 * `pbridge eval`: runs an ONNX policy (ours or any file with the documented signature, docs/onnx-policy.md) in an
 * env and reports success rate, returns, episode lengths and steps per second. The policy runs in onnxruntime-node
 * on the CPU, one observation at a time, as it would on a rig. By default it acts with the mean action; `--sample`
 * draws actions from the policy's Gaussian as training did, because the success rate training reports is that of
 * the sampled policy, and a policy that still has a wide spread can do better or worse at its mean.
 */
import { parseArgs } from 'node:util';
import { ACTION_MODES, type ActionMode } from '../../robots/arm7/controller.ts';
import { DEFAULT_TASK } from '../env/registry.ts';
import { fileActionStd } from '../data/policy-actor.ts';
import { loadOnnxPolicy } from '../onnx/index.ts';
import { InvalidArgument } from '../sim/errors.ts';
import { evaluatePolicy, openEvalEnv, type EvalEnv } from '../train/evaluate.ts';
import { intOption, optionalNumberOption } from './options.ts';
import { Progress } from './progress.ts';

export const EVAL_USAGE = `  eval --policy PATH.onnx --env NAME|PATH [--episodes 50] [--seed 0]
          [--action-mode ee_delta|joint_delta] [--sample | --action-noise STD] [--json]
                                                  run an ONNX policy (CPU): success rate, return, length,
                                                  steps/s; --env inverted-pendulum for the benchmark task.
                                                  Mean action, or with --sample the mean plus Gaussian noise of
                                                  the file's action_std per dimension (the policy training ran
                                                  and reported), or of STD in every dimension
`;

export async function cmdEval(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      policy: { type: 'string' },
      env: { type: 'string', default: DEFAULT_TASK },
      episodes: { type: 'string' },
      seed: { type: 'string' },
      'action-mode': { type: 'string', default: 'ee_delta' },
      json: { type: 'boolean', default: false },
      sample: { type: 'boolean', default: false },
      'action-noise': { type: 'string' },
    },
  });
  if (!values.policy) throw new InvalidArgument('--policy', 'eval needs the path of an ONNX policy');
  const mode = values['action-mode'] as ActionMode;
  if (!ACTION_MODES.includes(mode)) {
    throw new InvalidArgument('--action-mode', `must be one of ${ACTION_MODES.join(', ')}, got "${mode}"`);
  }
  const episodes = intOption('episodes', values.episodes, 50, 1, 1_000_000);
  const seed = intOption('seed', values.seed, 0, 0, 2 ** 32 - 1 - episodes);
  if (values.sample && values['action-noise'] !== undefined) {
    throw new InvalidArgument('--action-noise', 'sets the noise itself; give it or --sample, not both');
  }
  const noise = optionalNumberOption('action-noise', values['action-noise'], 0, 10);
  const policy = await loadOnnxPolicy(values.policy);
  let env: EvalEnv | undefined;
  try {
    const actionStd = values.sample
      ? fileActionStd(values.policy, policy.metadata.action_std, policy.actDim)
      : noise !== undefined
        ? new Array<number>(policy.actDim).fill(noise)
        : undefined;
    env = await openEvalEnv(values.env!, mode);
    const progress = new Progress(episodes, `eval ${env.name}`, !values.json);
    const summary = await evaluatePolicy(
      policy,
      env,
      episodes,
      seed,
      (done, s) =>
        progress.update(
          done,
          `success ${(100 * s.success_rate).toFixed(0)}% return ${s.mean_return.toFixed(2)}`,
        ),
      actionStd,
    );
    progress.finish();
    if (values.json) {
      console.log(JSON.stringify(summary, null, 2));
      return;
    }
    const trainedOn = policy.metadata.env;
    console.log(`env:             ${summary.env}`);
    console.log(
      `policy:          ${summary.policy} (obs_dim ${policy.obsDim}, act_dim ${policy.actDim}${trainedOn ? `, trained on ${trainedOn}` : ''})`,
    );
    const acting = actionStd
      ? `mean action + Gaussian noise of std ${actionStd.map((v) => v.toFixed(3)).join(', ')}`
      : 'mean action';
    console.log(`episodes:        ${episodes} (seeds ${seed}..${seed + episodes - 1}), ${acting}`);
    console.log(`success rate:    ${(100 * summary.success_rate).toFixed(1)}%`);
    console.log(`mean return:     ${summary.mean_return.toFixed(3)} (std ${summary.std_return.toFixed(3)})`);
    console.log(`mean length:     ${summary.mean_episode_length.toFixed(1)} steps`);
    console.log(
      `steps/s:         ${summary.steps_per_s.toFixed(0)} (one env, policy included: ${summary.policy_ms_per_step.toFixed(3)} ms per action)`,
    );
  } finally {
    env?.close();
    await policy.close();
  }
}
