/**
 * A trained ONNX policy as the acting half of recorded `policy` episodes (`pbridge demos --policy`,
 * `pbridge reward-eval --policy`): its mean action plus Gaussian noise, by default of the spread the learner
 * sampled with (the `action_std` metadata `pbridge train` writes), so the episodes visit the states training did.
 */
import { loadOnnxPolicy } from '../onnx/policy.ts';
import { InvalidArgument } from '../sim/errors.ts';
import type { DemoActor } from './demos.ts';

export interface OpenedActor {
  actor: DemoActor;
  close(): Promise<void>;
}

/** `noise`: the action noise standard deviation (undefined: the file's action_std). */
export async function openPolicyActor(
  path: string,
  dims: { obsDim: number; actDim: number },
  noise: number | undefined,
): Promise<OpenedActor> {
  const policy = await loadOnnxPolicy(path, dims);
  try {
    const std = noise ?? fileNoise(path, policy.metadata.action_std, dims.actDim);
    return {
      actor: {
        std,
        async act(obs, action) {
          action.set(await policy.run(obs, 1));
        },
      },
      close: () => policy.close(),
    };
  } catch (err) {
    await policy.close();
    throw err;
  }
}

/** The mean over action dimensions of the file's `action_std`. */
function fileNoise(path: string, raw: string | undefined, actDim: number): number {
  return fileActionStd(path, raw, actDim).reduce((a, b) => a + b, 0) / actDim;
}

/**
 * The per-dimension `action_std` metadata of a policy file (the spread its learner sampled with); a missing or
 * malformed entry is an error that points at `--action-noise`.
 */
export function fileActionStd(path: string, raw: string | undefined, actDim: number): number[] {
  let std: unknown;
  try {
    std = raw === undefined ? undefined : JSON.parse(raw);
  } catch {
    std = undefined;
  }
  if (
    !Array.isArray(std) ||
    std.length !== actDim ||
    !std.every((v) => typeof v === 'number' && v >= 0 && v <= 10)
  ) {
    throw new InvalidArgument(
      '--action-noise',
      `is required: ${path} has no usable action_std metadata (only policies exported by pbridge train carry it)`,
    );
  }
  return std as number[];
}
