/**
 * The oracle "model": progress read from the simulator's privileged state (each task's `oracleProgress()`).
 * An ablation and a test fixture only: it sees what no camera-based model can, so its results are labelled as
 * such wherever they are reported.
 *
 * `oracle:noise=STD` adds Gaussian noise of that standard deviation to every answer (then clips to [0, 1]): how much
 * error in Phi shaping tolerates, with the errors of a learned model but none of its bias. The noise of a request is
 * a function of its (envId, episodeId, step), so a run gives the same answers however they are batched.
 */
import { InvalidArgument } from '../sim/errors.ts';
import { missing, type ProgressModel, type ProgressRequest, type ProgressResponse } from './model.ts';

export const NOISY_ORACLE_PREFIX = 'oracle:noise=';

/** The noise standard deviation of an `oracle:noise=STD` source, or undefined for any other source. */
export function parseNoisyOracle(source: string): number | undefined {
  if (!source.startsWith(NOISY_ORACLE_PREFIX)) return undefined;
  const raw = source.slice(NOISY_ORACLE_PREFIX.length);
  const std = Number(raw);
  if (!(raw.trim() !== '' && std >= 0 && std <= 1)) {
    throw new InvalidArgument('--model', `oracle:noise= needs a standard deviation in [0, 1], got "${raw}"`);
  }
  return std;
}

export class OracleProgressModel implements ProgressModel {
  readonly id: string;
  readonly maxBatch = 4096;

  constructor(private readonly noiseStd = 0) {
    this.id =
      noiseStd > 0
        ? `oracle@1 + noise ${noiseStd} (privileged state, ablation)`
        : 'oracle@1 (privileged state, ablation)';
  }

  async predict(batch: readonly ProgressRequest[]): Promise<Omit<ProgressResponse, 'latencyMs'>[]> {
    return batch.map((req) => {
      const p = req.privileged?.progress;
      if (p === undefined || !Number.isFinite(p)) {
        return missing(
          this.id,
          'error',
          'request has no privileged progress (the task defines no oracleProgress)',
        );
      }
      const noisy =
        this.noiseStd > 0 ? p + this.noiseStd * hashedNormal(req.envId, req.episodeId, req.step) : p;
      return { progress: Math.min(1, Math.max(0, noisy)), status: 'ok' as const, model: this.id };
    });
  }
}

/** A standard normal draw that depends only on its three integer keys (Box-Muller on two hashed uniforms). */
function hashedNormal(a: number, b: number, c: number): number {
  const u1 = (mix(a, b, c, 0x9e3779b9) + 1) / 4294967297;
  const u2 = mix(a, b, c, 0x85ebca6b) / 4294967296;
  return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
}

/** murmur3's finaliser over the keys: an unsigned 32-bit hash. */
function mix(a: number, b: number, c: number, seed: number): number {
  let h = seed >>> 0;
  for (const k of [a, b, c]) {
    h = Math.imul(h ^ (k >>> 0), 0xcc9e2d51);
    h = (h << 15) | (h >>> 17);
    h = Math.imul(h, 0x1b873593);
    h ^= Math.floor(k / 4294967296) >>> 0;
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
