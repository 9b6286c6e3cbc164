/**
 * Success from a progress model alone, for rigs without a success sensor. One confident high answer is not
 * enough (a VLM can be fooled by one frame, a regression model overshoots near the end): the detector fires only
 * after `consecutive` answers in a row whose success score is at or above `threshold`, each with a confidence at
 * or above `confidenceFloor` where the model reports one. The score is the model's done probability where it
 * gives one (the default model does), else its progress: a progress regressor rarely says a full 1.0, while a
 * done head is trained for exactly this question. A missing answer (timeout, parse failure) breaks the streak:
 * it confirms nothing.
 */
import { InvalidArgument } from '../sim/errors.ts';
import type { ProgressResponse } from './model.ts';

export interface SuccessRule {
  /** A success score (done probability, else progress) at or above this counts towards success. Default 0.95. */
  threshold: number;
  /** Answers in a row that must clear the threshold. Default 3. */
  consecutive: number;
  /** Answers whose `confidence` is below this do not count. Default 0.5. */
  confidenceFloor: number;
}

export const DEFAULT_SUCCESS_RULE: SuccessRule = { threshold: 0.95, consecutive: 3, confidenceFloor: 0.5 };

export function checkSuccessRule(rule: SuccessRule): SuccessRule {
  if (!(rule.threshold > 0 && rule.threshold <= 1)) {
    throw new InvalidArgument('success.threshold', `must be in (0, 1], got ${rule.threshold}`);
  }
  if (!Number.isInteger(rule.consecutive) || rule.consecutive < 1 || rule.consecutive > 1000) {
    throw new InvalidArgument(
      'success.consecutive',
      `must be an integer in [1, 1000], got ${rule.consecutive}`,
    );
  }
  if (!(rule.confidenceFloor >= 0 && rule.confidenceFloor <= 1)) {
    throw new InvalidArgument('success.confidenceFloor', `must be in [0, 1], got ${rule.confidenceFloor}`);
  }
  return rule;
}

/** One episode's detector; make a new one (or `reset`) at every episode start. */
export class SuccessDetector {
  private streak = 0;
  private fired = false;

  constructor(readonly rule: SuccessRule = DEFAULT_SUCCESS_RULE) {
    checkSuccessRule(rule);
  }

  /** Feeds the next answer of the episode; returns whether success has been detected (it stays detected). */
  update(answer: Pick<ProgressResponse, 'status' | 'progress' | 'confidence' | 'done'>): boolean {
    const score = answer.done ?? answer.progress;
    const counts =
      answer.status === 'ok' &&
      score >= this.rule.threshold &&
      (answer.confidence === undefined || answer.confidence >= this.rule.confidenceFloor);
    this.streak = counts ? this.streak + 1 : 0;
    if (this.streak >= this.rule.consecutive) this.fired = true;
    return this.fired;
  }

  get detected(): boolean {
    return this.fired;
  }

  reset(): void {
    this.streak = 0;
    this.fired = false;
  }
}
