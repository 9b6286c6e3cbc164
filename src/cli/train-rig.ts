/**
 * `pbridge train --rig NAME[,NAME...]`: PPO on the episodes of connected rigs (real or `pbridge rig-sim`), with
 * the same run directory, checkpoints, policy export and live viewer as a simulated run. The bridge serves the
 * rigs with the learner's policy; `--resume runs/NAME` continues such a run.
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import type { BridgeServer } from '../bridge/server.ts';
import { sceneFromModel } from '../bridge/scene-source.ts';
import { makeEnv } from '../env/make.ts';
import { resolveTask } from '../env/registry.ts';
import { exportLearnerPolicy } from '../learn/export.ts';
import { loadLearnerCheckpoint, saveLearnerCheckpoint } from '../learn/checkpoint-io.ts';
import type { PpoLearner } from '../learn/ppo.ts';
import { InvalidArgument } from '../sim/errors.ts';
import { publishUpdateMetrics } from '../train/live-view.ts';
import { RunDir } from '../train/run-dir.ts';
import {
  defaultRigTrainConfig,
  RigTrainer,
  type ActionBounds,
  type RigTrainConfig,
  type RigTrainHooks,
} from '../train/rig/trainer.ts';
import type { TrainCounters } from '../train/trainer.ts';
import { intOption } from './options.ts';
import { formatDuration, stopOnSignal } from './progress.ts';
import { rigServeOptions } from './rig.ts';
import { bridgeOptions, startBridge } from './serve.ts';

export const TRAIN_RIG_USAGE = `  train --rig NAME[,NAME...] [--reward default|oracle|none|PATH.onnx|URL] [--steps 100000]
        [--rollout 1024] [--seed 0] [--run-dir runs/NAME] [--resume runs/NAME] [--rig-store rig-episodes]
        [--rig-deadline-ms MS] [--env TASK] [--port 8787] [--host 127.0.0.1] [--json]
                                                  train PPO on the episodes of connected rigs (rigs connect
                                                  to this process's bridge with its token); --env shows that
                                                  task's scene in the viewer
`;

/** What run directories of rig runs hold in config.json. */
export interface RigRunConfig extends RigTrainConfig {
  kind: 'rig';
  /** Task whose scene the viewer shows (optional: a real rig has no MJCF). */
  env: string | null;
  rigDeadlineMs: number | null;
}

export interface RigTrainSummary {
  run_dir: string;
  rigs: string[];
  reward: string;
  model: string | null;
  steps: number;
  updates: number;
  episodes_recent: number;
  success_rate: number;
  return_mean: number;
  wall_seconds: number;
  policy: string | null;
  stopped: boolean;
}

/** True when `pbridge train` was asked to train on rigs (`--rig`, or `--resume` of a rig run). */
export function wantsRigTraining(args: readonly string[]): boolean {
  if (args.some((a) => a === '--rig' || a.startsWith('--rig='))) return true;
  const i = args.indexOf('--resume');
  const dir = i >= 0 ? args[i + 1] : args.find((a) => a.startsWith('--resume='))?.slice('--resume='.length);
  return dir !== undefined && isRigRunDir(dir);
}

function isRigRunDir(dir: string): boolean {
  try {
    return (JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as { kind?: unknown }).kind === 'rig';
  } catch {
    return false;
  }
}

export interface TrainRigCliHooks {
  /** Extra hooks (tests stop the run or watch updates). */
  extra?: RigTrainHooks;
  /** Told the bridge once it listens (tests connect rigs to it). */
  onBridge?(bridge: BridgeServer): void;
  log?: (line: string) => void;
}

export async function cmdTrainRig(args: string[], cli: TrainRigCliHooks = {}): Promise<RigTrainSummary> {
  const { values } = parseArgs({
    args,
    options: {
      rig: { type: 'string' },
      reward: { type: 'string' },
      steps: { type: 'string' },
      rollout: { type: 'string' },
      seed: { type: 'string' },
      'checkpoint-every': { type: 'string' },
      'run-dir': { type: 'string' },
      resume: { type: 'string' },
      'rig-store': { type: 'string' },
      'rig-deadline-ms': { type: 'string' },
      env: { type: 'string' },
      port: { type: 'string' },
      host: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  let config: RigRunConfig;
  let dir: RunDir;
  let resume: { learner: PpoLearner; counters: TrainCounters; bounds: ActionBounds } | undefined;
  if (values.resume) {
    dir = new RunDir(values.resume);
    if (!dir.hasCheckpoint()) {
      throw new InvalidArgument(
        '--resume',
        `${values.resume} has no checkpoint (${basename(dir.checkpointPath)})`,
      );
    }
    config = dir.readJson<RigRunConfig>(dir.configPath);
    const ck = await loadLearnerCheckpoint(dir.checkpointPath, {
      numEnvs: 1,
      construct: { deferredRewards: true },
    });
    const { actionBounds, ...counters } = ck.extra as unknown as TrainCounters & {
      actionBounds?: ActionBounds;
    };
    if (!actionBounds) {
      throw new InvalidArgument(
        '--resume',
        `${dir.checkpointPath} has no action bounds: not a rig run's checkpoint`,
      );
    }
    resume = { learner: ck.learner, counters, bounds: actionBounds };
    dir.trimMetrics(resume.counters.update);
  } else {
    if (!values.rig) throw new InvalidArgument('--rig', 'name the rig(s) to train on: --rig NAME[,NAME...]');
    const base = defaultRigTrainConfig();
    config = {
      kind: 'rig',
      ...defaultRigTrainConfig({
        rigs: [...new Set(values.rig.split(',').filter(Boolean))],
        reward: values.reward ?? base.reward,
        steps: intOption('steps', values.steps, base.steps, 1, 1e10),
        rolloutSteps: intOption('rollout', values.rollout, base.rolloutSteps, 8, 1_000_000),
        seed: intOption('seed', values.seed, base.seed, 0, 2 ** 31 - 1),
        checkpointEvery: intOption(
          'checkpoint-every',
          values['checkpoint-every'],
          base.checkpointEvery,
          1,
          1e6,
        ),
        storeDir: values['rig-store'] ?? base.storeDir,
      }),
      env: values.env ?? null,
      rigDeadlineMs:
        values['rig-deadline-ms'] !== undefined
          ? intOption('rig-deadline-ms', values['rig-deadline-ms'], 0, 0, 60_000)
          : null,
    };
    const name = `rig-${config.rigs.join('+').replace(/[^a-z0-9-+]/gi, '_')}-${config.reward.replace(/[^a-z0-9-]/gi, '_')}-s${config.seed}`;
    dir = RunDir.fresh(name, values['run-dir']);
  }
  // Checked (and the learner's shape fixed) before anything is written or listened on.
  const trainer = new RigTrainer(config, resume);

  const log = values.json ? undefined : (cli.log ?? ((line: string) => process.stderr.write(line)));
  const print = (line: string): void => (values.json ? console.error(line) : console.log(line));
  const stop = stopOnSignal(log);

  const gamma = trainer.learner?.config.gamma ?? config.ppo.gamma ?? 0.99;
  const rigOptions = await rigServeOptions(
    {
      reward: config.reward,
      gamma: String(gamma),
      'rig-store': config.storeDir,
      ...(config.rigDeadlineMs !== null ? { 'rig-deadline-ms': String(config.rigDeadlineMs) } : {}),
    },
    print,
    { policy: trainer, observer: trainer },
  );
  const bridge = await startBridge({ ...bridgeOptions(values), rig: rigOptions }, print);
  // Written once the port is bound, so a port in use leaves no run directory behind.
  if (!resume) await dir.writeJson(dir.configPath, config);
  const envIds = config.rigs.map((_, i) => i);
  const envOf = new Map(config.rigs.map((r, i) => [r, i]));
  if (config.env) {
    const sceneEnv = await makeEnv(await resolveTask(config.env));
    bridge.hub.setScene({
      ...sceneFromModel(sceneEnv.mj, sceneEnv.model, {
        name: `rigs ${config.rigs.join(', ')} (${config.reward})`,
        instruction: sceneEnv.task.instruction,
        envIds,
      }),
      envNames: config.rigs,
    });
    sceneEnv.close();
  } else {
    // A real rig has no model to draw: an empty scene still carries the per-rig curves and episodes.
    bridge.hub.setScene({
      name: `rigs ${config.rigs.join(', ')} (${config.reward})`,
      envIds,
      envNames: config.rigs,
      bodies: [{ name: 'world', parent: 0 }],
      geoms: [],
      meshes: [],
      materials: [],
      cameras: [],
      center: [0, 0, 0],
      extent: 1,
    });
  }
  print(`rigs:   training on ${config.rigs.join(', ')}; run ${dir.path}`);
  cli.onBridge?.(bridge);

  const t0 = performance.now();
  const tty = Boolean(process.stderr.isTTY);
  let lastLine = 0;
  const hooks: RigTrainHooks = {
    ...cli.extra,
    shouldStop: () => stop.requested() || (cli.extra?.shouldStop?.() ?? false),
    onLearner: (learner, spec) => {
      print(`learner: obs_dim ${learner.obsDim}, act_dim ${learner.actDim} (from rig ${spec.name})`);
      cli.extra?.onLearner?.(learner, spec);
    },
    onReward: (e) => {
      const env = envOf.get(e.rig);
      if (env !== undefined && Number.isFinite(e.phi)) {
        bridge.hub.progress(
          env,
          { episode: e.episode, step: e.step, phi: e.phi, shaped: e.shaped, sparse: e.reward },
          e.rig,
        );
      }
      cli.extra?.onReward?.(e);
    },
    onEpisodeEnd: (rig, end, totalSteps) => {
      const env = envOf.get(rig);
      if (env !== undefined) {
        bridge.hub.episode({
          env,
          episode: end.episode,
          return: end.return,
          length: end.steps,
          success: end.success,
          totalSteps,
        });
      }
      cli.extra?.onEpisodeEnd?.(rig, end, totalSteps);
    },
    onWaiting: (c) => {
      const connected = bridge.rigs?.stats().map((s) => s.rig) ?? [];
      log?.(
        `${tty ? '\r' : ''}waiting for transitions: ${c.ready}/${c.needed} ready, ${c.skipped} skipped (not the policy's action); rigs connected: ${connected.join(', ') || 'none'}${tty ? ' ' : '\n'}`,
      );
      cli.extra?.onWaiting?.(c);
    },
    onUpdate: async (m, learner) => {
      dir.appendMetrics(m);
      publishUpdateMetrics(bridge.hub, m);
      await cli.extra?.onUpdate?.(m, learner);
      if (!log) return;
      const elapsed = (performance.now() - t0) / 1000;
      const line =
        `${m.step}/${config.steps} transitions  success ${(100 * m.success_rate).toFixed(0)}%  return ${m.return_mean.toFixed(2)}  ` +
        `phi ${m.phi.mean.toFixed(2)}  from ${Object.entries(m.rigs.per_rig)
          .map(([r, n]) => `${r} ${n}`)
          .join(', ')}  update ${m.timings.update_s.toFixed(1)}s`;
      if (tty) log(`\r${line} `);
      else if (elapsed - lastLine >= 10 || m.step >= config.steps) {
        lastLine = elapsed;
        log(`${line}\n`);
      }
    },
    onCheckpoint: async (learner, counters) => {
      const bounds = trainer.bounds!;
      await saveLearnerCheckpoint(dir.checkpointPath, learner, { ...counters, actionBounds: bounds });
      // The newest policy is on disk at every checkpoint: another server can serve it to rigs at once. It
      // outputs the rig's own units, as the rigs were sent.
      await exportLearnerPolicy(learner, dir.policyPath, {
        metadata: { rigs: config.rigs.join(','), reward: config.reward, step: String(counters.step) },
        actionScale: bounds,
      });
      await cli.extra?.onCheckpoint?.(learner, counters);
    },
  };
  try {
    const result = await trainer.run(hooks);
    if (tty && log) log('\n');
    const recent = result.counters.recent;
    const summary: RigTrainSummary = {
      run_dir: dir.path,
      rigs: config.rigs,
      reward: config.reward,
      model: rigOptions.reward?.id ?? null,
      steps: result.counters.step,
      updates: result.counters.update,
      episodes_recent: recent.length,
      success_rate: recent.length ? recent.filter((e) => e.success).length / recent.length : 0,
      return_mean: recent.length ? recent.reduce((a, e) => a + e.return, 0) / recent.length : 0,
      wall_seconds: result.wallSeconds,
      policy: result.learner && existsSync(dir.policyPath) ? dir.policyPath : null,
      stopped: result.stopped,
    };
    await dir.writeJson(dir.summaryPath, summary);
    if (values.json) console.log(JSON.stringify(summary, null, 2));
    else {
      console.log(
        `rigs ${config.rigs.join(', ')} (${config.reward}): ${summary.steps} transitions in ${formatDuration(summary.wall_seconds)}, ` +
          `success ${(100 * summary.success_rate).toFixed(0)}% over the last ${recent.length} episodes -> ${summary.run_dir}`,
      );
    }
    return summary;
  } finally {
    stop.dispose();
    await bridge.close();
  }
}
