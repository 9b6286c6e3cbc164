/** The judging arithmetic (Spearman with ties) and the success-from-model rule, on hand-worked sequences. */
import { describe, expect, it } from 'vitest';
import { ranks, spearman } from '../src/reward/metrics.ts';
import { SuccessDetector } from '../src/reward/success.ts';
import { InvalidArgument } from '../src/sim/errors.ts';

describe('spearman', () => {
  it('is 1 for any increasing sequence and -1 for a decreasing one', () => {
    expect(spearman([0.1, 0.2, 0.9, 0.95], [0, 1, 2, 3])).toBeCloseTo(1, 12);
    expect(spearman([5, 3, 2, -1], [0, 1, 2, 3])).toBeCloseTo(-1, 12);
  });

  it('gives tied values their average rank', () => {
    expect(Array.from(ranks([0.3, 0.1, 0.3, 0.7]))).toEqual([1.5, 0, 1.5, 3]);
  });

  it('matches a hand calculation with ties', () => {
    // a = [0, 0, 1, 3]: ranks [0.5, 0.5, 2, 3], mean 1.5 -> deviations [-1, -1, 0.5, 1.5]
    // b = time: ranks [0, 1, 2, 3], mean 1.5 -> deviations [-1.5, -0.5, 0.5, 1.5]
    // sum(da*db) = 1.5 + 0.5 + 0.25 + 2.25 = 4.5; sum(da^2) = 1 + 1 + 0.25 + 2.25 = 4.5; sum(db^2) = 5
    // rho = 4.5 / sqrt(4.5 * 5) = 0.948683...
    expect(spearman([0, 0, 1, 3], [0, 1, 2, 3])).toBeCloseTo(4.5 / Math.sqrt(22.5), 12);
  });

  it('is NaN when one side is constant (there is no order to agree with)', () => {
    expect(spearman([0.5, 0.5, 0.5], [0, 1, 2])).toBeNaN();
  });
});

describe('success detector', () => {
  const ok = (progress: number, confidence?: number) => ({
    status: 'ok' as const,
    progress,
    ...(confidence === undefined ? {} : { confidence }),
  });
  const lost = { status: 'timeout' as const, progress: NaN };

  it('fires on the third consecutive answer at or above 0.95 and stays fired', () => {
    const d = new SuccessDetector();
    const seen = [0.5, 0.96, 0.97, 0.99, 0.2].map((p) => d.update(ok(p)));
    expect(seen).toEqual([false, false, false, true, true]);
  });

  it('restarts the streak on a lower answer, a missing answer or a low confidence', () => {
    const d = new SuccessDetector();
    const seq = [
      ok(0.96),
      ok(0.97),
      ok(0.9),
      ok(0.96),
      ok(0.97),
      lost,
      ok(0.98),
      ok(0.99),
      ok(1, 0.2),
      ok(1),
    ];
    expect(seq.map((a) => d.update(a))).toEqual(Array(10).fill(false));
    expect(d.update(ok(1))).toBe(false);
    expect(d.update(ok(0.95))).toBe(true);
  });

  it('never counts a missing answer as progress, whatever number it carries', () => {
    const d = new SuccessDetector({ threshold: 0.95, consecutive: 1, confidenceFloor: 0 });
    expect(d.update({ status: 'parse_error', progress: 1 })).toBe(false);
    expect(d.update(ok(0.95))).toBe(true);
    d.reset();
    expect(d.detected).toBe(false);
  });

  it("uses the model's done probability instead of progress where the model gives one", () => {
    const d = new SuccessDetector({ threshold: 0.95, consecutive: 2, confidenceFloor: 0.5 });
    // Progress 0.9 but done 0.99: counts. Progress 1 but done 0.2: does not.
    expect(d.update({ status: 'ok', progress: 0.9, done: 0.99 })).toBe(false);
    expect(d.update({ status: 'ok', progress: 1, done: 0.2 })).toBe(false);
    expect(d.update({ status: 'ok', progress: 0.9, done: 0.99 })).toBe(false);
    expect(d.update({ status: 'ok', progress: 0.9, done: 0.97 })).toBe(true);
  });

  it('rejects a rule outside its limits, naming the field', () => {
    expect(() => new SuccessDetector({ threshold: 1.5, consecutive: 3, confidenceFloor: 0.5 })).toThrow(
      /success\.threshold: must be in \(0, 1\]/,
    );
    expect(() => new SuccessDetector({ threshold: 0.9, consecutive: 0, confidenceFloor: 0.5 })).toThrow(
      InvalidArgument,
    );
  });
});
