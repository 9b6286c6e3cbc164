/**
 * The training loop end to end on a real vector env: a run stopped at a checkpoint and resumed from the file
 * ends with exactly the parameters of the uninterrupted run; deferred rewards (how shaping delivers them) train
 * the same learner as rewards given step by step; and the CLI writes a complete run directory. Evaluation of the
 * mean action (`--eval-every`) leaves training exactly as it is without, runs on the updates it should, flags a
 * new best only where the figures beat every earlier one, survives a resume, and keeps as policy-best.onnx a file
 * that onnxruntime, through `pbridge eval`'s loop, scores exactly as the training run did. The warm start from
 * demonstrations (`--demos`, `--critic-warmup`): the expert's demonstrations are (observation, action taken
 * there) pairs that a fresh env replays exactly; PPO starts from the cloned actor, holds it through the critic-only
 * updates and then trains it; a run resumed where the warm-up ends matches the uninterrupted one; and the CLI
 * reports the warm start and refuses bad settings by name.
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadLearnerCheckpoint, saveLearnerCheckpoint } from '../src/learn/checkpoint-io.ts';
import { PpoLearner } from '../src/learn/ppo.ts';
import { Rng } from '../src/env/rng.ts';
import {
  defaultTrainConfig,
  train,
  type TrainConfig,
  type TrainCounters,
  type TrainResult,
  type UpdateMetrics,
} from '../src/train/trainer.ts';
import { makeEnv } from '../src/env/make.ts';
import { cloneBehavior } from '../src/learn/behavior-cloning.ts';
import { collectExpertDemonstrations } from '../src/train/demonstrations.ts';
import { evaluatePolicy, learnerEvalPolicy, openEvalEnv } from '../src/train/evaluate.ts';
import { loadOnnxPolicy } from '../src/onnx/index.ts';

/** A task whose success follows the mean action's direction from the first update (test/fixtures/cue-task.ts). */
const CUE = './test/fixtures/cue-task.ts';

const dir = mkdtempSync(join(tmpdir(), 'pb-train-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const config = defaultTrainConfig({
  env: 'reach',
  reward: 'oracle',
  steps: 4 * 16 * 2,
  numEnvs: 2,
  workers: 1,
  checkpointEvery: 2,
  ppo: { numSteps: 16, numMinibatches: 2, updateEpochs: 2 },
});

/** Rollout, reward and learner figures of a metrics line: what evaluation must not change. */
function trainingFigures(m: UpdateMetrics): Omit<UpdateMetrics, 'timings' | 'eval'> {
  const { timings: _t, eval: _e, ...rest } = m;
  return rest;
}

/** `pbridge train` with `flags` into run directory `run`, without the viewer. */
function pbridgeTrain(flags: string[], run: string): SpawnSyncReturns<string> {
  return spawnSync('node', ['bin/pbridge.js', 'train', ...flags, '--run-dir', run, '--no-serve'], {
    encoding: 'utf8',
  });
}

/** stdout and stderr of a `pbridge train` that must succeed (its stderr is the error otherwise). */
function trained(flags: string[], run: string): { stdout: string; stderr: string } {
  const r = pbridgeTrain(flags, run);
  if (r.status !== 0) throw new Error(`pbridge train exited with ${r.status}: ${r.stderr}`);
  return { stdout: r.stdout, stderr: r.stderr };
}

/** The stderr of `pbridge train` with `flags` into run directory `run`, which is expected to fail. */
function refusal(flags: string[], run: string): string {
  const r = pbridgeTrain(flags, run);
  return r.status === 0 ? '' : r.stderr;
}

const cueConfig = defaultTrainConfig({
  env: CUE,
  reward: 'sparse',
  steps: 6 * 16 * 2,
  numEnvs: 2,
  workers: 1,
  checkpointEvery: 2,
  evalEpisodes: 20,
  ppo: { numSteps: 16, numMinibatches: 2, updateEpochs: 2 },
});

describe('evaluation during training', () => {
  it('leaves training as it is, runs every N updates and after the last, and flags only a new best', async () => {
    const plainLines: UpdateMetrics[] = [];
    const plain = await train(cueConfig, { onUpdate: (m) => void plainLines.push(m) });
    const lines: UpdateMetrics[] = [];
    const evaluated = await train({ ...cueConfig, evalEvery: 4 }, { onUpdate: (m) => void lines.push(m) });
    expect(
      Buffer.compare(
        Buffer.from(evaluated.learner.model.params.buffer),
        Buffer.from(plain.learner.model.params.buffer),
      ),
    ).toBe(0);
    expect(lines.map(trainingFigures)).toEqual(plainLines.map(trainingFigures));
    expect(plainLines.every((m) => m.eval === undefined)).toBe(true);
    // 6 updates, every 4th and the last.
    expect(lines.filter((m) => m.eval).map((m) => m.update)).toEqual([4, 6]);

    const every: UpdateMetrics[] = [];
    const each = await train({ ...cueConfig, evalEvery: 1 }, { onUpdate: (m) => void every.push(m) });
    const evals = every.map((m) => m.eval!);
    // Figures that differ between updates: the comparison below has something to decide.
    expect(new Set(evals.map((e) => e.success_rate)).size).toBeGreaterThan(1);
    let best: { s: number; r: number } | undefined;
    for (const e of evals) {
      expect(e.episodes).toBe(20);
      const better =
        !best || e.success_rate > best.s || (e.success_rate === best.s && e.return_mean > best.r);
      expect(e.best).toBe(better);
      if (better) best = { s: e.success_rate, r: e.return_mean };
    }
    const top = every.filter((m) => m.eval!.best).at(-1)!;
    expect(each.counters.best).toEqual({
      update: top.update,
      step: top.step,
      success_rate: top.eval!.success_rate,
      return_mean: top.eval!.return_mean,
    });
  });

  it('carries the best evaluation through a checkpoint and resume', async () => {
    const config = { ...cueConfig, evalEvery: 1 };
    const full = await train(config);
    const path = join(dir, 'cue.pbck');
    let updates = 0;
    await train(config, {
      onUpdate: () => void updates++,
      onCheckpoint: (learner, counters) => saveLearnerCheckpoint(path, learner, { ...counters }),
      shouldStop: () => updates === 4,
    });
    const ck = await loadLearnerCheckpoint(path, { construct: { deferredRewards: true } });
    const atStop = ck.extra as unknown as TrainCounters;
    expect(atStop.best).toBeDefined();
    const resumed = await train(config, {}, { learner: ck.learner, counters: atStop });
    expect(resumed.counters.best).toEqual(full.counters.best);
  });

  it('keeps policy-best.onnx, which onnxruntime scores as training did', async () => {
    const run = join(dir, 'cue-run');
    const out = trained(
      [
        '--env',
        CUE,
        '--reward',
        'sparse',
        '--steps',
        '192',
        '--envs',
        '2',
        '--workers',
        '1',
        '--ppo',
        'numSteps=16,numMinibatches=2,updateEpochs=2',
        '--eval-every',
        '1',
        '--eval-episodes',
        '20',
        '--eval-seed',
        '4000',
        '--json',
      ],
      run,
    ).stdout;
    const summary = JSON.parse(out) as {
      best: { step: number; success_rate: number; return_mean: number; policy: string };
    };
    const lines = readFileSync(join(run, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as UpdateMetrics);
    const top = lines.filter((m) => m.eval?.best).at(-1)!;
    expect(summary.best).toEqual({
      step: top.step,
      success_rate: top.eval!.success_rate,
      return_mean: top.eval!.return_mean,
      policy: join(run, 'policy-best.onnx'),
    });
    const policy = await loadOnnxPolicy(summary.best.policy);
    const env = await openEvalEnv(CUE);
    try {
      expect(policy.metadata.step).toBe(String(top.step));
      expect(policy.metadata.eval_seed).toBe('4000');
      const again = await evaluatePolicy(policy, env, 20, 4000);
      expect(again.success_rate).toBe(top.eval!.success_rate);
      expect(again.mean_return).toBeCloseTo(top.eval!.return_mean, 9);
      expect(again.mean_episode_length).toBe(top.eval!.episode_length_mean);
      // The final policy is another file, not overwritten by the best one.
      expect(existsSync(join(run, 'policy.onnx'))).toBe(true);
    } finally {
      env.close();
      await policy.close();
    }
  });

  it('refuses an evaluation setting out of range by name, before creating the run directory', () => {
    const cases: [string[], RegExp][] = [
      [['--eval-episodes', '0'], /--eval-episodes.*\[1, 100000\]/],
      [['--eval-every=-1'], /--eval-every.*\[0, 1000000\]/],
    ];
    for (const [flags, message] of cases) {
      const run = join(dir, `bad-eval-${flags[0]!.replace(/[^a-z]/g, '')}`);
      expect(refusal(flags, run)).toMatch(message);
      expect(existsSync(run)).toBe(false);
    }
  });

  it('refuses --resume of a directory without a checkpoint, and does not create it', () => {
    const missing = join(dir, 'never-trained');
    expect(refusal(['--resume', missing], join(dir, 'unused'))).toMatch(
      /--resume: .*never-trained has no checkpoint/,
    );
    expect(existsSync(missing)).toBe(false);
  });
});

/**
 * A run of `cfg` (4 updates, checkpoints every 2) stopped at its first checkpoint, as a SIGKILL after it would
 * leave things, and resumed from the file in a fresh learner.
 */
async function stopAndResume(cfg: TrainConfig, name: string): Promise<TrainResult> {
  const path = join(dir, `${name}.pbck`);
  let updates = 0;
  const half = await train(cfg, {
    onUpdate: () => void updates++,
    onCheckpoint: (learner, counters) => saveLearnerCheckpoint(path, learner, { ...counters }),
    shouldStop: () => updates === 2,
  });
  expect(half.counters.update).toBe(2);
  expect(half.stopped).toBe(true);
  const ck = await loadLearnerCheckpoint(path, { construct: { deferredRewards: true } });
  const resumed = await train(
    cfg,
    {},
    { learner: ck.learner, counters: ck.extra as unknown as TrainCounters },
  );
  expect(resumed.counters.update).toBe(4);
  return resumed;
}

describe('training loop', () => {
  it('resumes from a checkpoint to exactly the parameters of an uninterrupted run', async () => {
    const full = await train(config);
    expect(full.counters.update).toBe(4);
    const resumed = await stopAndResume(config, 'ck');
    expect(
      Buffer.compare(
        Buffer.from(resumed.learner.model.params.buffer),
        Buffer.from(full.learner.model.params.buffer),
      ),
    ).toBe(0);
    // ...and training changed them: the comparison is not between two untouched initialisations.
    const fresh = new PpoLearner({
      obsDim: full.learner.obsDim,
      actDim: full.learner.actDim,
      numEnvs: 2,
      seed: 0,
      config: full.learner.config,
    });
    expect(
      Buffer.compare(Buffer.from(fresh.model.params.buffer), Buffer.from(full.learner.model.params.buffer)),
    ).not.toBe(0);
  });

  it('trains the same learner from deferred rewards as from rewards given step by step', () => {
    const opts = {
      obsDim: 3,
      actDim: 2,
      numEnvs: 2,
      seed: 5,
      config: { numSteps: 8, numMinibatches: 2, updateEpochs: 2 },
    };
    const now = new PpoLearner(opts);
    const later = new PpoLearner({ ...opts, deferredRewards: true });
    const rng = new Rng(1);
    const all: number[] = [];
    for (let t = 0; t < 8; t++) {
      const obs = Float32Array.from({ length: 6 }, () => rng.normal());
      now.act(obs);
      later.act(obs);
      const rewards = [rng.normal(), rng.normal()];
      const terminated = [t === 3 ? 1 : 0, 0];
      const truncated = [0, 0];
      all.push(...rewards);
      now.observe({ rewards, terminated, truncated });
      later.observe({ terminated, truncated });
    }
    const next = Float32Array.from({ length: 6 }, () => rng.normal());
    expect(() => later.update(next)).toThrow(/setRolloutRewards/);
    later.setRolloutRewards(all);
    now.update(next);
    later.update(next);
    expect(Array.from(later.model.params)).toEqual(Array.from(now.model.params));
  });

  it('writes config, metrics, checkpoint, policy and summary through the CLI', () => {
    const run = join(dir, 'run');
    const out = trained(
      [
        '--env',
        'reach',
        '--reward',
        'sparse',
        '--steps',
        '256',
        '--envs',
        '2',
        '--workers',
        '1',
        '--ppo',
        'numSteps=64,initLogStd=-0.5,actorHidden=32/32',
        '--shaping-scale',
        '2',
        '--json',
      ],
      run,
    ).stdout;
    const summary = JSON.parse(out) as { steps: number; updates: number; policy: string };
    expect(summary.steps).toBe(256);
    // 256 steps of 2 envs at 64 steps per env per rollout: the --ppo settings were used, and are kept in the config.
    expect(summary.updates).toBe(2);
    const saved = JSON.parse(readFileSync(join(run, 'config.json'), 'utf8')) as {
      shapingScale: number;
      ppo: Record<string, unknown>;
    };
    expect(saved.shapingScale).toBe(2);
    expect(saved.ppo).toMatchObject({ numSteps: 64, initLogStd: -0.5, actorHidden: [32, 32] });
    for (const f of ['config.json', 'metrics.jsonl', 'checkpoint.pbck', 'policy.onnx', 'summary.json']) {
      expect(existsSync(join(run, f))).toBe(true);
    }
    const lines = readFileSync(join(run, 'metrics.jsonl'), 'utf8').trim().split('\n');
    expect(lines).toHaveLength(summary.updates);
    const last = JSON.parse(lines.at(-1)!) as { step: number; phi: { queried: number } };
    expect(last.step).toBe(256);
    // Sparse reward asks no model.
    expect(last.phi.queried).toBe(0);
  });

  it('refuses a misspelt or out-of-range --ppo setting by name, before creating the run directory', () => {
    const cases: [string, RegExp][] = [
      ['learningrate=1e-3', /ppo\.learningrate.*unknown field/],
      ['gamma=1.5', /ppo\.gamma.*must be in \[0, 1\]/],
      ['initLogStd=abc', /--ppo initLogStd.*must be a number/],
      ['numSteps', /--ppo.*key=value/],
    ];
    for (const [ppo, message] of cases) {
      const run = join(dir, `bad-${ppo.replace(/[^a-z]/gi, '')}`);
      expect(refusal(['--ppo', ppo], run)).toMatch(message);
      expect(existsSync(run)).toBe(false);
    }
  });
});

const warmConfig: TrainConfig = { ...config, demos: 6, bcEpochs: 5, criticWarmup: 2 };

describe('expert demonstrations', () => {
  it('pair each observation with the action taken there, as a fresh env replays them', async () => {
    const demos = await collectExpertDemonstrations('reach', 3, 500);
    expect(demos.episodes).toBe(3);
    expect(demos.successes).toBe(3); // the reach expert solves every one of these seeds (test/experts.test.ts)
    const env = await makeEnv('reach');
    try {
      const D = env.obsDim;
      const A = env.actDim;
      const obs = new Float32Array(D);
      let row = 0;
      for (let e = 0; e < 3; e++) {
        env.resetInto(obs, 0, 500 + e);
        for (;;) {
          expect(obs).toEqual(demos.obs.subarray(row * D, (row + 1) * D));
          const f = env.stepInto(demos.actions.subarray(row * A, (row + 1) * A), obs, 0);
          row++;
          if (f.terminated || f.truncated) {
            expect(f.success).toBe(true);
            break;
          }
        }
      }
      expect(row).toBe(demos.count);
    } finally {
      env.close();
    }
  });
});

describe('training from a warm start', () => {
  it('starts from the cloned actor, holds it through the critic warm-up, then trains it', async () => {
    const actors: Float32Array[] = [];
    const critics: Float32Array[] = [];
    const run = await train(warmConfig, {
      onUpdate: (_m, learner) => {
        const { params, offsets } = learner.model;
        actors.push(params.slice(0, offsets.critic));
        critics.push(params.slice(offsets.critic));
      },
    });
    // The reference: the same demos cloned into a fresh learner built as the trainer builds it.
    const reference = new PpoLearner({
      obsDim: run.learner.obsDim,
      actDim: run.learner.actDim,
      numEnvs: warmConfig.numEnvs,
      seed: warmConfig.seed,
      config: run.learner.config,
    });
    const demos = await collectExpertDemonstrations(warmConfig.env, warmConfig.demos, warmConfig.demoSeed);
    const bc = cloneBehavior(reference, demos, { epochs: warmConfig.bcEpochs, seed: warmConfig.seed });
    const cloned = reference.model.params.slice(0, reference.model.offsets.critic);

    expect(actors[0]).toEqual(cloned);
    expect(actors[1]).toEqual(cloned);
    expect(actors[2]).not.toEqual(cloned);
    expect(critics[1]).not.toEqual(critics[0]);
    // Evaluating the cloned actor before PPO (with --eval-every) scores it without changing what the run trains.
    const evaluated = await train({ ...warmConfig, evalEvery: 2, evalEpisodes: 5 });
    expect(evaluated.learner.model.params).toEqual(run.learner.model.params);
    const evalEnv = await openEvalEnv('reach');
    const cloneEval = await evaluatePolicy(learnerEvalPolicy(reference), evalEnv, 5, 1_000_000);
    evalEnv.close();
    expect(evaluated.counters.warmStart?.eval).toEqual({
      episodes: 5,
      success_rate: cloneEval.success_rate,
      return_mean: cloneEval.mean_return,
    });
    expect(run.counters.warmStart).toMatchObject({
      episodes: 6,
      successes: demos.successes,
      transitions: demos.count,
      epochs: 5,
      loss_first_epoch: bc.epochLoss[0],
      loss_final: bc.finalLoss,
    });
  });

  it('resumes at the end of the warm-up to exactly the parameters of an uninterrupted run', async () => {
    const full = await train(warmConfig);
    // Checkpoint 2 is where the warm-up ends and the optimiser restarts.
    const resumed = await stopAndResume(warmConfig, 'warm');
    expect(resumed.learner.model.params).toEqual(full.learner.model.params);
    const { seconds: _a, ...resumedWarm } = resumed.counters.warmStart!;
    const { seconds: _b, ...fullWarm } = full.counters.warmStart!;
    expect(resumedWarm).toEqual(fullWarm);
  });
});

describe('pbridge train --demos', () => {
  it('reports the warm start on stderr and in summary.json', () => {
    const run = join(dir, 'cli-warm');
    const { stderr } = trained(
      [
        '--env',
        'reach',
        '--reward',
        'oracle',
        '--steps',
        '64',
        '--envs',
        '2',
        '--workers',
        '1',
        '--ppo',
        'numSteps=16,numMinibatches=2,updateEpochs=1',
        '--demos',
        '4',
        '--bc-epochs',
        '3',
        '--critic-warmup',
        '1',
        '--eval-every',
        '4',
        '--eval-episodes',
        '3',
      ],
      run,
    );
    expect(stderr).toMatch(/behaviour cloning: running 4 expert episodes and fitting the actor to them/);
    expect(stderr).toMatch(
      /behaviour cloning: 4 of 4 expert episodes succeeded, \d+ transitions, 3 epochs, mean squared error .*; mean action \d+% of 3 episodes/,
    );
    const summary = JSON.parse(readFileSync(join(run, 'summary.json'), 'utf8')) as {
      warm_start: { episodes: number; successes: number; epochs: number; eval: { episodes: number } } | null;
    };
    expect(summary.warm_start).toMatchObject({ episodes: 4, successes: 4, epochs: 3, eval: { episodes: 3 } });
    const saved = JSON.parse(readFileSync(join(run, 'config.json'), 'utf8')) as Record<string, number>;
    expect(saved).toMatchObject({ demos: 4, bcEpochs: 3, criticWarmup: 1, demoSeed: 2_000_000 });
    // With demonstrations the exploration noise starts at std 0.37 unless --ppo sets it; either way config.json
    // holds what the run used.
    expect((saved.ppo as unknown as Record<string, number>).initLogStd).toBe(-1);
    expect(defaultTrainConfig({ demos: 4, ppo: { initLogStd: 0 } }).ppo.initLogStd).toBe(0);
    expect(defaultTrainConfig({ demos: 0 }).ppo.initLogStd).toBeUndefined();
  });

  it('refuses out-of-range warm-start settings by name, before creating the run directory', () => {
    const cases: [string[], RegExp][] = [
      [['--demos=-1'], /--demos.*\[0, 100000\]/],
      [['--bc-epochs', '0'], /--bc-epochs.*\[1, 100000\]/],
      [['--critic-warmup', '1.5'], /--critic-warmup/],
    ];
    for (const [flags, message] of cases) {
      const run = join(dir, `bad-${flags[0]!.replace(/[^a-z]/g, '')}`);
      expect(refusal(flags, run)).toMatch(message);
      expect(existsSync(run)).toBe(false);
    }
  });
});
