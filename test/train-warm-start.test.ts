/**
 * The behaviour-cloning warm start of `pbridge train --demos N --critic-warmup K`. Proves: the expert's
 * demonstrations are (observation, action taken there) pairs, which a fresh env replays exactly from the episode
 * seeds; the trainer starts PPO from the cloned actor, holds it there through the K critic-only updates and then
 * trains it; a run resumed at the end of the warm-up ends with the uninterrupted run's parameters (the optimiser
 * restart is part of the schedule, not of the process); and the CLI reports the warm start and refuses bad
 * settings by name before creating a run directory.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { makeEnv } from '../src/env/make.ts';
import { cloneBehavior } from '../src/learn/behavior-cloning.ts';
import { loadLearnerCheckpoint, saveLearnerCheckpoint } from '../src/learn/checkpoint-io.ts';
import { PpoLearner } from '../src/learn/ppo.ts';
import { collectExpertDemonstrations } from '../src/train/demonstrations.ts';
import { defaultTrainConfig, train, type TrainCounters } from '../src/train/trainer.ts';

const dir = mkdtempSync(join(tmpdir(), 'pb-warm-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const config = defaultTrainConfig({
  env: 'reach',
  reward: 'oracle',
  steps: 4 * 16 * 2,
  numEnvs: 2,
  workers: 1,
  checkpointEvery: 2,
  demos: 6,
  bcEpochs: 5,
  criticWarmup: 2,
  ppo: { numSteps: 16, numMinibatches: 2, updateEpochs: 2 },
});

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
    const run = await train(config, {
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
      numEnvs: config.numEnvs,
      seed: config.seed,
      config: run.learner.config,
    });
    const demos = await collectExpertDemonstrations(config.env, config.demos, config.demoSeed);
    const bc = cloneBehavior(reference, demos, { epochs: config.bcEpochs, seed: config.seed });
    const cloned = reference.model.params.slice(0, reference.model.offsets.critic);

    expect(actors[0]).toEqual(cloned);
    expect(actors[1]).toEqual(cloned);
    expect(actors[2]).not.toEqual(cloned);
    expect(critics[1]).not.toEqual(critics[0]);
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
    const full = await train(config);
    const path = join(dir, 'warm.pbck');
    let updates = 0;
    const half = await train(config, {
      onUpdate: () => void updates++,
      onCheckpoint: (learner, counters) => saveLearnerCheckpoint(path, learner, { ...counters }),
      shouldStop: () => updates === 2,
    });
    expect(half.stopped).toBe(true);
    const ck = await loadLearnerCheckpoint(path, { construct: { deferredRewards: true } });
    const counters = ck.extra as unknown as TrainCounters;
    expect(counters.warmStart?.transitions).toBe(full.counters.warmStart?.transitions);
    const resumed = await train(config, {}, { learner: ck.learner, counters });
    expect(resumed.counters.update).toBe(4);
    expect(resumed.learner.model.params).toEqual(full.learner.model.params);
    const { seconds: _a, ...resumedWarm } = resumed.counters.warmStart!;
    const { seconds: _b, ...fullWarm } = full.counters.warmStart!;
    expect(resumedWarm).toEqual(fullWarm);
  });
});

describe('pbridge train --demos', () => {
  /** stderr of a `pbridge train` expected to fail. */
  const refusal = (flags: string[], run: string): string => {
    try {
      execFileSync('node', ['bin/pbridge.js', 'train', ...flags, '--run-dir', run, '--no-serve'], {
        encoding: 'utf8',
        stdio: 'pipe',
      });
    } catch (e) {
      return String((e as { stderr: string }).stderr);
    }
    return '';
  };

  it('reports the warm start on stderr and in summary.json', () => {
    const run = join(dir, 'cli-warm');
    const { stderr, status } = spawnSync(
      'node',
      [
        'bin/pbridge.js',
        'train',
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
        '--run-dir',
        run,
        '--no-serve',
      ],
      { encoding: 'utf8' },
    );
    expect(status).toBe(0);
    expect(stderr).toMatch(
      /behaviour cloning: 4 of 4 expert episodes succeeded, \d+ transitions, 3 epochs, mean squared error/,
    );
    const summary = JSON.parse(readFileSync(join(run, 'summary.json'), 'utf8')) as {
      warm_start: { episodes: number; successes: number; epochs: number } | null;
    };
    expect(summary.warm_start).toMatchObject({ episodes: 4, successes: 4, epochs: 3 });
    const saved = JSON.parse(readFileSync(join(run, 'config.json'), 'utf8')) as Record<string, number>;
    expect(saved).toMatchObject({ demos: 4, bcEpochs: 3, criticWarmup: 1, demoSeed: 2_000_000 });
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
