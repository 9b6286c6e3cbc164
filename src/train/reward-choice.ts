/**
 * What `--reward` means: which shaping mode, with which progress model, or a baseline without one.
 *   default | oracle | <path.onnx> | <http(s)://...>   potential-based shaping with that progress model
 *   oracle:noise=STD                                 the oracle plus Gaussian noise (an ablation)
 *   sparse                                           the task's success reward alone
 *   dense                                            sparse plus the task's hand-designed dense terms
 *   naive | progress                                 the semantic-trap ablations, with --model (default: default)
 */
import { InvalidArgument } from '../sim/errors.ts';
import type { ShapingMode } from '../reward/shaping.ts';
import { parseNoisyOracle } from '../reward/oracle.ts';

export interface RewardChoice {
  /** What the user asked for, as written. */
  name: string;
  mode: ShapingMode;
  /** The progress model to open, when the mode uses one. */
  model: string | undefined;
  /** Add the task's dense terms to the sparse reward. */
  dense: boolean;
}

export const REWARD_NAMES = ['default', 'oracle', 'sparse', 'dense', 'naive', 'progress'] as const;

export function parseRewardChoice(reward: string, model = 'default'): RewardChoice {
  switch (reward) {
    case 'sparse':
      return { name: reward, mode: 'sparse', model: undefined, dense: false };
    case 'dense':
      return { name: reward, mode: 'sparse', model: undefined, dense: true };
    case 'naive':
    case 'progress':
      return { name: reward, mode: reward, model, dense: false };
    case 'default':
    case 'oracle':
      return { name: reward, mode: 'potential', model: reward, dense: false };
    default:
      if (
        reward.endsWith('.onnx') ||
        /^https?:\/\//i.test(reward) ||
        parseNoisyOracle(reward) !== undefined
      ) {
        return { name: reward, mode: 'potential', model: reward, dense: false };
      }
      throw new InvalidArgument(
        '--reward',
        `must be one of ${REWARD_NAMES.join(', ')}, a path to an .onnx progress model or an http(s):// URL, got "${reward}"`,
      );
  }
}
