/**
 * `pbridge` command line. Every command prints a human summary, or one JSON document on stdout with --json.
 * Errors print `error [CODE]: message` (or `{"error": {...}}` with --json) and exit with status 2.
 */
import { parseArgs } from 'node:util';
import { makeEnv } from '../env/make.ts';
import { Box } from '../env/spaces.ts';
import { namesOf } from '../sim/mujoco.ts';
import { DEFAULT_TASK, resolveTask, TASK_NAMES } from '../env/registry.ts';
import { ProgressBridgeError, InvalidArgument } from '../sim/errors.ts';
import { ACTION_MODES, ROBOT_OBS_NAMES, type ActionMode } from '../../robots/arm7/controller.ts';
import { inspectModel } from './inspect.ts';
import { Progress } from './progress.ts';
import { cmdRender, RENDER_USAGE } from './render.ts';
import { cmdDemos, DEMOS_USAGE } from './demos.ts';
import { cmdRewardEval, REWARD_EVAL_USAGE } from './reward-eval.ts';
import { cmdTrain, TRAIN_USAGE } from './train.ts';
import { cmdTrainRig, TRAIN_RIG_USAGE, wantsRigTraining } from './train-rig.ts';
import { cmdEval, EVAL_USAGE } from './eval.ts';
import { BUILTIN_POLICIES, rollout, type BuiltinPolicy } from './rollout.ts';
import { intOption } from './options.ts';
import { bridgeOptions, cmdServe, cmdView, SERVE_USAGE, serveRollout } from './serve.ts';
import { cmdRigSim, RIG_SIM_USAGE } from './rig.ts';
import { ensureViewerBuilt } from '../bridge/viewer-build.ts';

const USAGE = `usage: pbridge <command> [options]

commands:
  envs [--json]                                   list tasks with spaces, cameras, instruction, episode length
  rollout --env NAME|PATH --policy expert|random|zero [--episodes 20] [--seed 0]
          [--action-mode ee_delta|joint_delta] [--json]
                                                  roll out a policy: success rate, return, length, steps/s
  inspect PATH.xml [--seconds 2] [--json]         load any MJCF: sizes, bodies, cameras, zero-control steps/s
${RENDER_USAGE}${DEMOS_USAGE}${REWARD_EVAL_USAGE}${TRAIN_USAGE}${TRAIN_RIG_USAGE}${EVAL_USAGE}${SERVE_USAGE}${RIG_SIM_USAGE}`;

async function cmdEnvs(json: boolean): Promise<void> {
  const rows = [];
  for (const name of TASK_NAMES) {
    const env = await makeEnv(name);
    rows.push({
      name,
      instruction: env.task.instruction,
      episode_steps: env.episodeSteps,
      frame_skip: env.frameSkip,
      control_dt: env.frameSkip * env.model.opt.timestep,
      observation_space: env.observationSpace.toJSON(),
      observation_names: env.obsNames,
      action_spaces: {
        ee_delta: env.actionSpace.toJSON(),
        // Derived from the robot rather than by building a second env in the other mode.
        joint_delta: new Box([env.robot.actionDim('joint_delta')], -1, 1).toJSON(),
      },
      cameras: namesOf(env.mj, env.model, 'camera'),
    });
    env.close();
  }
  if (json) {
    console.log(JSON.stringify({ tasks: rows, default: DEFAULT_TASK }, null, 2));
    return;
  }
  for (const r of rows) {
    console.log(`${r.name}${r.name === DEFAULT_TASK ? ' (default)' : ''}`);
    console.log(`  instruction:  ${r.instruction}`);
    console.log(
      `  episode:      ${r.episode_steps} steps of ${r.control_dt.toFixed(3)} s (frame skip ${r.frame_skip})`,
    );
    console.log(
      `  observation:  Box(${r.observation_space.shape.join('x')}) ${r.observation_names.slice(ROBOT_OBS_NAMES.length).join(', ')} after ${ROBOT_OBS_NAMES.length} robot entries`,
    );
    console.log(`  actions:      ee_delta Box(4) [dx, dy, dz, gripper]; joint_delta Box(8)`);
    console.log(`  cameras:      ${r.cameras.join(', ')}`);
  }
}

async function cmdRollout(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      env: { type: 'string', default: DEFAULT_TASK },
      policy: { type: 'string', default: 'expert' },
      episodes: { type: 'string' },
      seed: { type: 'string' },
      'action-mode': { type: 'string', default: 'ee_delta' },
      json: { type: 'boolean', default: false },
      serve: { type: 'boolean', default: false },
      port: { type: 'string' },
      host: { type: 'string' },
      rate: { type: 'string' },
      'num-envs': { type: 'string' },
    },
  });
  const policy = values.policy as BuiltinPolicy;
  if (!BUILTIN_POLICIES.includes(policy)) {
    throw new InvalidArgument(
      '--policy',
      `must be one of ${BUILTIN_POLICIES.join(', ')}, got "${values.policy}"`,
    );
  }
  const mode = values['action-mode'] as ActionMode;
  if (!ACTION_MODES.includes(mode)) {
    throw new InvalidArgument('--action-mode', `must be one of ${ACTION_MODES.join(', ')}, got "${mode}"`);
  }
  const episodes = intOption('episodes', values.episodes, 20, 1, 1_000_000);
  const seed = intOption('seed', values.seed, 0, 0, 2 ** 32 - 1 - episodes);
  const task = await resolveTask(values.env!);
  if (values.serve) {
    return serveRollout({
      task,
      policy,
      actionMode: mode,
      // Streaming runs until stopped unless a total is asked for.
      episodes: values.episodes === undefined ? undefined : episodes,
      seed,
      numEnvs: intOption('num-envs', values['num-envs'], 1, 1, 64),
      bridge: bridgeOptions(values),
    });
  }
  const env = await makeEnv(task, { actionMode: mode });
  const progress = new Progress(episodes, `${task.name} ${policy}`, !values.json);
  const summary = rollout(env, policy, episodes, seed, (done, s) =>
    progress.update(
      done,
      `success ${(100 * s.success_rate).toFixed(0)}% ${s.env_steps_per_s.toFixed(0)} steps/s`,
    ),
  );
  progress.finish();
  env.close();
  if (values.json) {
    console.log(JSON.stringify(summary, null, 2));
    return;
  }
  console.log(`task:            ${summary.env} ("${task.instruction}")`);
  console.log(`policy:          ${policy} (${mode})`);
  console.log(`episodes:        ${episodes} (seeds ${seed}..${seed + episodes - 1})`);
  console.log(`success rate:    ${(100 * summary.success_rate).toFixed(1)}%`);
  console.log(`mean return:     ${summary.mean_return.toFixed(3)}`);
  console.log(`mean length:     ${summary.mean_episode_length.toFixed(1)} steps`);
  console.log(
    `env steps/s:     ${summary.env_steps_per_s.toFixed(0)} (one env, one thread, policy time excluded)`,
  );
}

async function cmdInspect(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { json: { type: 'boolean', default: false }, seconds: { type: 'string' } },
  });
  const path = positionals[0];
  if (!path) throw new InvalidArgument('PATH', 'inspect needs the path of an MJCF file');
  const seconds = intOption('seconds', values.seconds, 2, 1, 600);
  const r = await inspectModel(path, seconds);
  if (values.json) {
    console.log(JSON.stringify(r, null, 2));
    return;
  }
  console.log(`file:       ${r.file}`);
  console.log(
    `nq ${r.nq}  nv ${r.nv}  nu ${r.nu}  nbody ${r.nbody}  ngeom ${r.ngeom}  nmesh ${r.nmesh}  timestep ${r.timestep}`,
  );
  console.log(`bodies:     ${r.bodies.join(', ')}`);
  console.log(`cameras:    ${r.cameras.length ? r.cameras.join(', ') : '(none)'}`);
  console.log(`actuators:  ${r.actuators.length ? r.actuators.join(', ') : '(none)'}`);
  console.log(
    `zero-control run: ${r.steps} steps in ${seconds} s = ${r.steps_per_s.toFixed(0)} steps/s (${r.simulated_s.toFixed(2)} s simulated)${r.finite ? '' : ', STATE WENT NON-FINITE'}`,
  );
}

/** The usage blocks of one command (train has two: simulated and rig), or undefined for an unknown command. */
function commandUsage(command: string): string | undefined {
  const blocks: string[][] = [];
  for (const line of USAGE.split('\n').slice(3)) {
    if (/^ {2}[a-z]/.test(line)) blocks.push([line]);
    else if (line.trim() && blocks.length) blocks.at(-1)!.push(line);
  }
  const mine = blocks.filter((b) => b[0]!.trim().split(' ')[0] === command);
  if (!mine.length) return undefined;
  return `usage: pbridge ${command} [options]\n\n${mine.map((b) => b.join('\n')).join('\n')}\n`;
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const json = rest.includes('--json');
  // Checked before a command parses its flags, which would refuse --help as an unknown option.
  const help = command !== undefined && (rest.includes('--help') || rest.includes('-h'));
  const usage = help
    ? commandUsage(command)
    : command === 'help' && rest[0]
      ? commandUsage(rest[0])
      : undefined;
  if (usage) {
    process.stdout.write(usage);
    return 0;
  }
  try {
    switch (command) {
      case 'envs':
        await cmdEnvs(json);
        return 0;
      case 'rollout':
        await cmdRollout(rest);
        return 0;
      case 'inspect':
        await cmdInspect(rest);
        return 0;
      case 'render':
        await cmdRender(rest);
        return 0;
      case 'serve':
        await cmdServe(rest);
        return 0;
      case 'view':
        await cmdView(rest);
        return 0;
      case 'build-viewer':
        console.log(await ensureViewerBuilt((line) => console.error(line)));
        return 0;
      case 'demos':
        await cmdDemos(rest);
        return 0;
      case 'eval':
        await cmdEval(rest);
        return 0;
      case 'reward-eval':
        await cmdRewardEval(rest);
        return 0;
      case 'train':
        if (wantsRigTraining(rest)) await cmdTrainRig(rest);
        else await cmdTrain(rest);
        return 0;
      case 'rig-sim':
        await cmdRigSim(rest);
        return 0;
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(USAGE);
        return command === undefined ? 2 : 0;
      default:
        throw new InvalidArgument(
          'command',
          `unknown command "${command}"; valid: envs, rollout, inspect, render, demos, reward-eval, train, eval, serve, view, build-viewer, rig-sim`,
        );
    }
  } catch (err) {
    const code = err instanceof ProgressBridgeError ? err.code : ((err as { code?: string }).code ?? 'ERROR');
    const message = err instanceof Error ? err.message : String(err);
    if (json) console.log(JSON.stringify({ error: { code, message } }));
    else console.error(`error [${code}]: ${message}`);
    if (!(err instanceof ProgressBridgeError) && err instanceof Error && process.env.PBRIDGE_DEBUG)
      console.error(err.stack);
    return 2;
  }
}

process.exitCode = await main(process.argv.slice(2));
