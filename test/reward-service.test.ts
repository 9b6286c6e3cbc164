/**
 * The reward service in front of a real backend (the privileged-state oracle): batching by size and by wait,
 * caching by (env, episode, step), and failures that become missing answers (NaN, never 0), never rejections.
 */
import { describe, expect, it } from 'vitest';
import { makeEnv } from '../src/env/make.ts';
import type { ProgressRequest, ProgressResponse } from '../src/reward/model.ts';
import { OracleProgressModel } from '../src/reward/oracle.ts';
import { RewardService } from '../src/reward/service.ts';

/** The oracle, recording the batch sizes the service sends it. */
class RecordingOracle extends OracleProgressModel {
  readonly batches: number[] = [];
  override async predict(batch: readonly ProgressRequest[]) {
    this.batches.push(batch.length);
    return super.predict(batch);
  }
}

const request = (envId: number, step: number, progress?: number): ProgressRequest => ({
  instruction: 'push the red cube to the green target',
  views: {},
  envId,
  episodeId: 0,
  step,
  ...(progress === undefined ? {} : { privileged: { progress } }),
});

describe('RewardService', () => {
  it('fills batches up to maxBatch and sends the remainder after maxWaitMs', async () => {
    const model = new RecordingOracle();
    const service = new RewardService(model, { maxBatch: 4, maxWaitMs: 5, maxInFlight: 1 });
    const answers = await Promise.all(
      Array.from({ length: 10 }, (_, i) => service.submit(request(i, 0, i / 10))),
    );
    expect(model.batches).toEqual([4, 4, 2]);
    expect(answers.map((a) => a.progress)).toEqual(Array.from({ length: 10 }, (_, i) => i / 10));
    expect(answers.every((a) => a.status === 'ok')).toBe(true);
    const s = service.stats();
    expect([s.submitted, s.answered, s.batches, s.queueDepth, s.inFlight]).toEqual([10, 10, 3, 0, 0]);
    expect(s.meanBatch).toBeCloseTo(10 / 3, 12);
    expect(s.latencyMs.p50).toBeLessThanOrEqual(s.latencyMs.p95);
    expect(s.latencyMs.p95).toBeLessThanOrEqual(s.latencyMs.p99);
    await service.close();
  });

  it('a lone request waits for company at most maxWaitMs, and submit itself never blocks', async () => {
    const service = new RewardService(new OracleProgressModel(), { maxBatch: 64, maxWaitMs: 30 });
    const t0 = performance.now();
    const pending = service.submit(request(0, 0, 0.5));
    expect(performance.now() - t0).toBeLessThan(5);
    expect(service.stats().queueDepth).toBe(1);
    const a = await pending;
    expect(a.latencyMs).toBeGreaterThanOrEqual(25);
    expect(a.latencyMs).toBeLessThan(1000);
    await service.close();
  });

  it('scores a state once: a repeated (env, episode, step) is answered from the cache', async () => {
    const model = new RecordingOracle();
    const service = new RewardService(model, { maxBatch: 8, maxWaitMs: 1 });
    const a = await service.submit(request(3, 7, 0.25));
    // The same key with a different privileged value must not be re-scored.
    const b = await service.submit(request(3, 7, 0.9));
    expect(b.progress).toBe(0.25);
    expect(model.batches).toEqual([1]);
    expect(service.stats().cacheHits).toBe(1);
    expect(b).toBe(a);
    await service.close();
  });

  it('turns backend failures into missing answers (NaN progress, never 0) and never rejects', async () => {
    const service = new RewardService(new OracleProgressModel(), { maxBatch: 2, maxWaitMs: 1 });
    const [good, bad] = await Promise.all([
      service.submit(request(0, 0, 0.4)),
      service.submit(request(1, 0)),
    ]);
    expect(good).toMatchObject({ status: 'ok', progress: 0.4 });
    expect(bad.status).toBe('error');
    expect(bad.progress).toBeNaN();
    expect(bad.error).toMatch(/no privileged progress/);
    await service.close();

    const throwing = new RewardService(
      { id: 'broken@0', maxBatch: 8, predict: async () => Promise.reject(new Error('GPU fell over')) },
      { maxWaitMs: 1 },
    );
    const t = await throwing.submit(request(0, 0));
    expect(t).toMatchObject({ status: 'error', error: 'GPU fell over', model: 'broken@0' });
    expect(t.progress).toBeNaN();
    await throwing.close();

    const lying = new RewardService(
      {
        id: 'lying@0',
        maxBatch: 8,
        predict: async (batch) =>
          batch.map(() => ({ progress: NaN, status: 'ok' as const, model: 'lying@0' })),
      },
      { maxWaitMs: 1 },
    );
    const l = await lying.submit(request(0, 0));
    expect(l.status).toBe('parse_error');
    expect(l.progress).toBeNaN();
    await lying.close();
  });

  it('answers a call that outlives timeoutMs with `timeout`, and keeps serving', async () => {
    let calls = 0;
    const service = new RewardService(
      {
        id: 'slow@0',
        maxBatch: 8,
        predict: (batch) => {
          calls++;
          const delay = calls === 1 ? 500 : 0;
          return new Promise((resolve) =>
            setTimeout(
              () => resolve(batch.map(() => ({ progress: 0.7, status: 'ok' as const, model: 'slow@0' }))),
              delay,
            ),
          );
        },
      },
      { maxWaitMs: 1, timeoutMs: 50 },
    );
    const first: ProgressResponse = await service.submit(request(0, 0));
    expect(first.status).toBe('timeout');
    expect(first.progress).toBeNaN();
    const second = await service.submit(request(0, 1));
    expect(second).toMatchObject({ status: 'ok', progress: 0.7 });
    await service.close();
  });

  it('bounds its queue and rejects bad options naming the field', async () => {
    const service = new RewardService(new OracleProgressModel(), { maxBatch: 8, maxQueue: 2, maxWaitMs: 50 });
    const answers = [
      service.submit(request(0, 0, 0.1)),
      service.submit(request(0, 1, 0.1)),
      service.submit(request(0, 2, 0.1)),
    ];
    const third = await answers[2]!;
    expect(third.status).toBe('error');
    expect(third.error).toMatch(/queue full \(2 requests waiting\)/);
    expect((await answers[0]!).status).toBe('ok');
    await service.close();
    expect(() => new RewardService(new OracleProgressModel(), { maxBatch: 0 })).toThrow(
      /maxBatch: must be an integer/,
    );
    expect(() => new RewardService(new OracleProgressModel(), { maxWaitMs: -1 })).toThrow(
      /maxWaitMs: must be in/,
    );
  });

  it('scores a real episode with the oracle: progress rises along the push expert to 1 at success', async () => {
    const env = await makeEnv('push');
    const service = new RewardService(new OracleProgressModel(), { maxBatch: 16, maxWaitMs: 1 });
    env.reset({ seed: 2 });
    const pending: Promise<ProgressResponse>[] = [];
    let step = 0;
    for (;;) {
      pending.push(
        service.submit({ ...request(0, step, env.oracleProgress()), instruction: env.task.instruction }),
      );
      const r = env.step(env.expertAction());
      step++;
      if (r.terminated || r.truncated) {
        expect(r.info.is_success).toBe(true);
        pending.push(service.submit(request(0, step, env.oracleProgress())));
        break;
      }
    }
    const progress = (await Promise.all(pending)).map((a) => a.progress);
    expect(progress[0]).toBeLessThan(0.3);
    expect(progress.at(-1)).toBe(1);
    // Staged privileged progress ends far above where it starts, with no wild drop along an expert episode.
    for (let t = 1; t < progress.length; t++) expect(progress[t]!).toBeGreaterThan(progress[t - 1]! - 0.15);
    await service.close();
    env.close();
  });
});
