/**
 * `pbridge train`: PPO on a task with a progress-shaped (or baseline) reward, into a run directory; `--resume`
 * continues a run from its checkpoint.
 */
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_TASK } from '../env/registry.ts';
import { exportLearnerPolicy } from '../learn/export.ts';
import { loadLearnerCheckpoint, saveLearnerCheckpoint } from '../learn/checkpoint-io.ts';
import { InvalidArgument } from '../sim/errors.ts';
import { RunDir } from '../train/run-dir.ts';
import {
  DEFAULT_TRAIN_PPO,
  defaultTrainConfig,
  train,
  type TrainConfig,
  type TrainCounters,
  type TrainHooks,
  type UpdateMetrics,
  type WarmStart,
} from '../train/trainer.ts';
import { checkPpoConfig, type PpoConfig, type PpoLearner } from '../learn/ppo.ts';
import { intOption, numberOption, parsePpoOverrides } from './options.ts';
import { formatDuration, stopOnSignal } from './progress.ts';
import { bridgeOptions, startBridge, type BridgeCliOptions } from './serve.ts';
import type { BridgeServer } from '../bridge/server.ts';
import { sceneFromModel } from '../bridge/scene-source.ts';
import { makeEnv } from '../env/make.ts';
import { resolveTask } from '../env/registry.ts';
import { LiveView } from '../train/live-view.ts';
import { parseRewardChoice } from '../train/reward-choice.ts';
import type { VectorEnv } from '../vector/vector-env.ts';

export const TRAIN_USAGE = `  train [--env push] [--reward default|oracle|sparse|dense|naive|progress|PATH.onnx|URL] [--steps 500000]
        [--seed 0] [--envs 16] [--workers 2] [--query-stride 1] [--shaping-scale 1] [--model default]
        [--ppo key=value,...] [--run-dir runs/NAME] [--resume runs/NAME] [--no-serve] [--port 8787]
        [--eval-every 0] [--eval-episodes 50] [--eval-seed 1000000] [--show-envs 4] [--json]
        [--demos 0] [--demo-seed 2000000] [--bc-epochs 200] [--critic-warmup 0]
                                                  train PPO with a progress-shaped reward, watched live in the
                                                  browser; writes config, metrics.jsonl, checkpoints,
                                                  policy.onnx and summary.json; --ppo overrides learner
                                                  settings (docs/training.md), e.g. learningRate=1e-3;
                                                  --eval-every N runs the mean action on fixed seeds every N
                                                  updates and keeps the best as policy-best.onnx;
                                                  --demos N clones the actor from the scripted expert's
                                                  successful episodes of N before PPO starts, and
                                                  --critic-warmup K trains only the critic for K updates
`;

export interface TrainSummary {
  run_dir: string;
  env: string;
  reward: string;
  model: string | null;
  steps: number;
  updates: number;
  success_rate: number;
  return_mean: number;
  wall_seconds: number;
  steps_per_s: number;
  policy: string;
  /** The best evaluation of the mean action (`--eval-every`), and its policy file; null without evaluation. */
  best: { step: number; success_rate: number; return_mean: number; policy: string } | null;
  /** The behaviour-cloning warm start (`--demos`); null without one. */
  warm_start: WarmStart | null;
  stopped: boolean;
}

export interface TrainCliHooks {
  /** Extra hooks (the live viewer attaches here). */
  extra?: TrainHooks;
  /** Where human progress goes (stderr); absent with --json. */
  log?: (line: string) => void;
}

export async function cmdTrain(args: string[], cli: TrainCliHooks = {}): Promise<TrainSummary> {
  const { values } = parseArgs({
    args,
    options: {
      env: { type: 'string' },
      reward: { type: 'string' },
      model: { type: 'string' },
      steps: { type: 'string' },
      seed: { type: 'string' },
      envs: { type: 'string' },
      workers: { type: 'string' },
      'query-stride': { type: 'string' },
      'shaping-scale': { type: 'string' },
      ppo: { type: 'string' },
      'checkpoint-every': { type: 'string' },
      'run-dir': { type: 'string' },
      resume: { type: 'string' },
      providers: { type: 'string' },
      json: { type: 'boolean', default: false },
      'no-serve': { type: 'boolean', default: false },
      port: { type: 'string' },
      host: { type: 'string' },
      'show-envs': { type: 'string' },
      'eval-every': { type: 'string' },
      'eval-episodes': { type: 'string' },
      'eval-seed': { type: 'string' },
      demos: { type: 'string' },
      'demo-seed': { type: 'string' },
      'bc-epochs': { type: 'string' },
      'critic-warmup': { type: 'string' },
    },
  });
  let config: TrainConfig;
  let dir: RunDir;
  let resume: { learner: PpoLearner; counters: TrainCounters } | undefined;
  if (values.resume) {
    dir = new RunDir(values.resume);
    if (!dir.hasCheckpoint()) {
      throw new InvalidArgument(
        '--resume',
        `${values.resume} has no checkpoint (${basename(dir.checkpointPath)})`,
      );
    }
    // Runs written before a setting existed get its default.
    config = defaultTrainConfig(dir.readJson<Partial<TrainConfig>>(dir.configPath));
    const ck = await loadLearnerCheckpoint(dir.checkpointPath, {
      numEnvs: config.numEnvs,
      construct: { deferredRewards: true },
    });
    resume = { learner: ck.learner, counters: ck.extra as unknown as TrainCounters };
    dir.trimMetrics(resume.counters.update);
  } else {
    const base = defaultTrainConfig();
    const evalEpisodes = intOption('eval-episodes', values['eval-episodes'], base.evalEpisodes, 1, 100_000);
    const demos = intOption('demos', values.demos, base.demos, 0, 100_000);
    config = defaultTrainConfig({
      env: values.env ?? DEFAULT_TASK,
      reward: values.reward ?? base.reward,
      model: values.model ?? base.model,
      steps: intOption('steps', values.steps, base.steps, 1, 1e10),
      seed: intOption('seed', values.seed, base.seed, 0, 2 ** 31 - 1),
      numEnvs: intOption('envs', values.envs, base.numEnvs, 1, 1024),
      workers: intOption('workers', values.workers, base.workers, 1, 64),
      queryStride: intOption('query-stride', values['query-stride'], base.queryStride, 1, 1000),
      shapingScale: numberOption('shaping-scale', values['shaping-scale'], base.shapingScale, 0, 1000),
      ppo: { ...base.ppo, ...(parsePpoOverrides(values.ppo) as Partial<PpoConfig>) },
      checkpointEvery: intOption(
        'checkpoint-every',
        values['checkpoint-every'],
        base.checkpointEvery,
        1,
        1e6,
      ),
      ...(values.providers ? { providers: values.providers.split(',') } : {}),
      evalEvery: intOption('eval-every', values['eval-every'], base.evalEvery, 0, 1e6),
      evalEpisodes,
      evalSeed: intOption('eval-seed', values['eval-seed'], base.evalSeed, 0, 2 ** 32 - 1 - evalEpisodes),
      demos,
      demoSeed: intOption('demo-seed', values['demo-seed'], base.demoSeed, 0, 2 ** 32 - 1 - demos),
      bcEpochs: intOption('bc-epochs', values['bc-epochs'], base.bcEpochs, 1, 100_000),
      criticWarmup: intOption('critic-warmup', values['critic-warmup'], base.criticWarmup, 0, 1e6),
    });
    config.workers = Math.min(config.workers, config.numEnvs);
    // Checked before the run directory exists, so a misspelt setting leaves nothing behind.
    checkPpoConfig(config.ppo);
    const name = `${config.env.replace(/[^a-z0-9-]/gi, '_')}-${config.reward.replace(/[^a-z0-9-]/gi, '_')}-s${config.seed}`;
    dir = RunDir.fresh(name, values['run-dir']);
  }
  const log = values.json ? undefined : (cli.log ?? ((line: string) => process.stderr.write(line)));
  const stop = stopOnSignal(log);
  const totalSteps = config.steps;
  const t0 = performance.now();
  const tty = Boolean(process.stderr.isTTY);
  let lastLine = 0;
  let lastEval = '';
  const hooks: TrainHooks = {
    ...cli.extra,
    shouldStop: () => stop.requested() || (cli.extra?.shouldStop?.() ?? false),
    onUpdate: async (m: UpdateMetrics, learner) => {
      dir.appendMetrics(m);
      if (m.eval?.best) {
        await exportLearnerPolicy(learner, dir.bestPolicyPath, {
          metadata: {
            ...policyMetadata(config, m.step),
            eval_success_rate: String(m.eval.success_rate),
            eval_return_mean: String(m.eval.return_mean),
            eval_episodes: String(m.eval.episodes),
            eval_seed: String(config.evalSeed),
          },
        });
      }
      await cli.extra?.onUpdate?.(m, learner);
      if (!log) return;
      // The latest evaluation stays on every line, so a terminal's redrawn line never keeps a stale tail.
      if (m.eval) {
        const best = m.eval.best ? ' (best)' : '';
        lastEval = `  eval ${(100 * m.eval.success_rate).toFixed(0)}%${best}`;
      }
      const elapsed = (performance.now() - t0) / 1000;
      const frac = Math.min(1, m.step / totalSteps);
      const rate = (m.step - (resume?.counters.step ?? 0)) / elapsed;
      const eta = rate > 0 ? (totalSteps - m.step) / rate : 0;
      const line =
        `${m.step}/${totalSteps} steps ${rate.toFixed(0)}/s  success ${(100 * m.success_rate).toFixed(0)}%  ` +
        `return ${m.return_mean.toFixed(2)}  phi ${m.phi.mean.toFixed(2)}  eta ${formatDuration(eta)}` +
        lastEval;
      if (tty) {
        const width = 20;
        const bar = '#'.repeat(Math.round(frac * width)).padEnd(width, '-');
        log(`\r[${bar}] ${line} `);
      } else if (elapsed - lastLine >= 10 || m.step >= totalSteps || m.eval) {
        lastLine = elapsed;
        log(`${line}\n`);
      }
    },
    beforeWarmStart: (episodes) => {
      log?.(`behaviour cloning: running ${episodes} expert episodes and fitting the actor to them...\n`);
    },
    onWarmStart: (w) => {
      log?.(
        `behaviour cloning: ${w.successes} of ${w.episodes} expert episodes succeeded, ${w.transitions} transitions, ` +
          `${w.epochs} epochs, mean squared error ${w.loss_first_epoch.toFixed(4)} -> ${w.loss_final.toFixed(4)} ` +
          `(${formatDuration(w.seconds)})` +
          (w.eval
            ? `; mean action ${(100 * w.eval.success_rate).toFixed(0)}% of ${w.eval.episodes} episodes`
            : '') +
          '\n',
      );
    },
    onCheckpoint: async (learner, counters) => {
      await saveLearnerCheckpoint(dir.checkpointPath, learner, { ...counters });
      await cli.extra?.onCheckpoint?.(learner, counters);
    },
  };
  let bridge: BridgeServer | undefined;
  try {
    if (!values['no-serve']) {
      const shown = Math.min(config.numEnvs, intOption('show-envs', values['show-envs'], 4, 1, 64));
      // With --json, stdout carries only the summary: the viewer address goes to stderr.
      const print = values.json ? (l: string) => console.error(l) : undefined;
      bridge = await serveLiveView(bridgeOptions(values), print, config, shown, hooks);
    }
    // Written once the viewer's port is bound, so a port in use leaves no run directory behind.
    if (!resume) await dir.writeJson(dir.configPath, config);
    const result = await train(config, hooks, resume);
    if (tty && log) log('\n');
    await exportLearnerPolicy(result.learner, dir.policyPath, {
      metadata: policyMetadata(config, result.counters.step),
    });
    const best = result.counters.best;
    const recent = result.counters.recent;
    const summary: TrainSummary = {
      run_dir: dir.path,
      env: config.env,
      reward: config.reward,
      model: result.model ?? null,
      steps: result.counters.step,
      updates: result.counters.update,
      success_rate: recent.length ? recent.filter((e) => e.success).length / recent.length : 0,
      return_mean: recent.length ? recent.reduce((a, e) => a + e.return, 0) / recent.length : 0,
      wall_seconds: result.wallSeconds,
      steps_per_s: (result.counters.step - (resume?.counters.step ?? 0)) / result.wallSeconds,
      policy: dir.policyPath,
      best: best
        ? {
            step: best.step,
            success_rate: best.success_rate,
            return_mean: best.return_mean,
            policy: dir.bestPolicyPath,
          }
        : null,
      warm_start: result.counters.warmStart ?? null,
      stopped: result.stopped,
    };
    await dir.writeJson(dir.summaryPath, summary);
    if (values.json) console.log(JSON.stringify(summary, null, 2));
    else {
      console.log(
        `${summary.env} (${summary.reward}): ${summary.steps} steps in ${formatDuration(summary.wall_seconds)}, ` +
          `success ${(100 * summary.success_rate).toFixed(0)}% over the last ${recent.length} episodes -> ${summary.run_dir}`,
      );
      if (best) {
        console.log(
          `best evaluation: ${(100 * best.success_rate).toFixed(0)}% of ${config.evalEpisodes} episodes (mean action) ` +
            `at step ${best.step} -> ${dir.bestPolicyPath}`,
        );
      }
    }
    return summary;
  } finally {
    stop.dispose();
    await bridge?.close();
  }
}

/** Starts the bridge and hooks the training loop's poses, Phi answers and metrics to its viewers. */
async function serveLiveView(
  options: BridgeCliOptions,
  print: ((line: string) => void) | undefined,
  config: TrainConfig,
  shown: number,
  hooks: TrainHooks,
): Promise<BridgeServer> {
  const bridge = await startBridge(options, print);
  const sceneEnv = await makeEnv(await resolveTask(config.env));
  const choice = parseRewardChoice(config.reward, config.model);
  bridge.hub.setScene(
    sceneFromModel(sceneEnv.mj, sceneEnv.model, {
      name: `${config.env} (${config.reward})`,
      instruction: sceneEnv.task.instruction,
      envIds: Array.from({ length: shown }, (_, i) => i),
    }),
  );
  const dt = sceneEnv.frameSkip * sceneEnv.model.opt.timestep;
  sceneEnv.close();
  const gamma = { ...DEFAULT_TRAIN_PPO, ...config.ppo }.gamma ?? 0.99;
  // The cameras and size the model is fed are known once it is open; thumbnails use whatever the envs render.
  let live: LiveView | undefined;
  const makeLive = (venv: VectorEnv): LiveView => {
    const spec = venv.imageObs;
    live ??= new LiveView(bridge.hub, shown, gamma, spec?.cameras ?? [], spec?.size ?? 0, dt);
    return live;
  };
  hooks.poseEnvs = shown;
  hooks.onReset = (venv, episodeOf, images) => makeLive(venv).reset(venv, episodeOf, images);
  hooks.onStep = (venv, res, total, episodeOf) => makeLive(venv).step(venv, res, total, episodeOf);
  if (choice.model) hooks.onAnswer = (env, episode, state, phi) => live?.answer(env, episode, state, phi);
  const onUpdate = hooks.onUpdate!;
  hooks.onUpdate = async (m, learner) => {
    live?.update(m);
    await onUpdate(m, learner);
  };
  return bridge;
}

function policyMetadata(config: TrainConfig, step: number): Record<string, string> {
  return { env: config.env, reward: config.reward, seed: String(config.seed), step: String(step) };
}
