/**
 * The oracle ablation with noise (`oracle:noise=STD`): its answers are the stage progress plus zero-mean Gaussian
 * noise of the asked standard deviation, a fixed function of (env, episode, step), and bad specs are refused.
 */
import { describe, expect, it } from 'vitest';
import { openProgressModel } from '../src/reward/open-model.ts';
import { OracleProgressModel, parseNoisyOracle } from '../src/reward/oracle.ts';
import type { ProgressRequest } from '../src/reward/model.ts';
import { parseRewardChoice } from '../src/train/reward-choice.ts';
import { InvalidArgument } from '../src/sim/errors.ts';

const request = (envId: number, episodeId: number, step: number, progress = 0.5): ProgressRequest => ({
  instruction: 'x',
  views: {},
  envId,
  episodeId,
  step,
  privileged: { progress },
});

describe('noisy oracle', () => {
  it('adds zero-mean noise of the given standard deviation, the same for the same request', async () => {
    const model = new OracleProgressModel(0.05);
    const batch = Array.from({ length: 20_000 }, (_, i) => request(i % 16, Math.floor(i / 1600), i % 100));
    const answers = await model.predict(batch);
    const errors = answers.map((a) => a.progress - 0.5);
    const mean = errors.reduce((a, b) => a + b, 0) / errors.length;
    const std = Math.sqrt(errors.reduce((a, b) => a + (b - mean) ** 2, 0) / errors.length);
    // Standard error of the mean: 0.05 / sqrt(20000) = 3.5e-4; of the std about 2.5e-4.
    expect(Math.abs(mean)).toBeLessThan(1.5e-3);
    expect(Math.abs(std - 0.05)).toBeLessThan(1.5e-3);
    // About 68% within one standard deviation, as a Gaussian has.
    const within = errors.filter((e) => Math.abs(e) < 0.05).length / errors.length;
    expect(within).toBeGreaterThan(0.66);
    expect(within).toBeLessThan(0.7);
    // Asked again, one at a time and in another order: the same answers.
    const again = await model.predict([batch[7]!, batch[3]!]);
    expect(again.map((a) => a.progress)).toEqual([answers[7]!.progress, answers[3]!.progress]);
    // Neighbouring steps are not correlated.
    let cov = 0;
    for (let i = 1; i < errors.length; i++) cov += errors[i]! * errors[i - 1]!;
    expect(Math.abs(cov / errors.length / 0.05 ** 2)).toBeLessThan(0.05);
    // Answers stay in [0, 1].
    const edge = await model.predict([request(0, 0, 0, 0), request(0, 0, 1, 1)]);
    for (const a of edge) expect(a.progress >= 0 && a.progress <= 1).toBe(true);
  });

  it('opens from a --model / --reward spec and refuses a bad one, naming the field', async () => {
    const opened = await openProgressModel('oracle:noise=0.02');
    expect(opened.kind).toBe('oracle');
    expect(opened.model.id).toContain('noise 0.02');
    expect(parseRewardChoice('oracle:noise=0.02')).toMatchObject({
      mode: 'potential',
      model: 'oracle:noise=0.02',
    });
    expect(parseNoisyOracle('oracle')).toBeUndefined();
    for (const bad of ['oracle:noise=', 'oracle:noise=-0.1', 'oracle:noise=abc', 'oracle:noise=2']) {
      const err = (() => {
        try {
          parseNoisyOracle(bad);
        } catch (e) {
          return e;
        }
      })();
      expect(err).toBeInstanceOf(InvalidArgument);
      expect((err as Error).message).toMatch(/--model: oracle:noise= needs a standard deviation in \[0, 1\]/);
    }
  });
});
