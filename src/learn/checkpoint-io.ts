/**
 * PpoLearner checkpoints on the checkpoint file format of src/util/checkpoint.ts: `PpoLearner.state()` split into
 * binary sections (everything stored as typed arrays, bit-exact) and JSON meta (dimensions, config, counters, RNG
 * state, and the caller's `extra`: step count, env id, anything JSON). Written atomically; a learner restored from
 * the file continues bit for bit as the saved one would have.
 *
 * Sections: `params` f32 [P], `adam.m` f32 [P], `adam.v` f32 [P], `obs_norm.mean` f64 [obsDim],
 * `obs_norm.var` f64 [obsDim], `reward_rms.mean` f64 [1], `reward_rms.var` f64 [1], `reward_scaler.returns`
 * f64 [numEnvs]. Counts and the Rng words are in meta: JSON numbers round-trip doubles exactly.
 */
import type { RngState } from '../env/rng.ts';
import { CheckpointCorrupt, InvalidArgument } from '../sim/errors.ts';
import {
  readCheckpoint,
  writeCheckpoint,
  type Checkpoint,
  type CheckpointArray,
} from '../util/checkpoint.ts';
import { PpoLearner, type PpoConfig, type PpoLearnerOptions, type PpoLearnerState } from './ppo.ts';

/** Value of meta.kind: tells a learner checkpoint from other files of the same container format. */
export const LEARNER_CHECKPOINT_KIND = 'pbridge.ppo-learner';

/** What the caller stores beside the learner: at least the env step count; any JSON besides. */
export interface LearnerCheckpointExtra {
  /** Env steps taken when the checkpoint was written. */
  step: number;
  [key: string]: unknown;
}

interface LearnerMeta {
  kind: typeof LEARNER_CHECKPOINT_KIND;
  /** PpoLearnerState.version of the saved state. */
  stateVersion: number;
  obsDim: number;
  actDim: number;
  numEnvs: number;
  config: PpoConfig;
  updates: number;
  adamStep: number;
  obsNormCount: number;
  rewardRmsCount: number;
  rng: RngState;
  extra: LearnerCheckpointExtra;
}

/** Writes the learner (between rollouts: `state()` throws RolloutOrderError mid-rollout) and `extra` to `path`. */
export async function saveLearnerCheckpoint(
  path: string,
  learner: PpoLearner,
  extra: LearnerCheckpointExtra,
): Promise<void> {
  if (extra === null || typeof extra !== 'object' || !Number.isSafeInteger(extra.step) || extra.step < 0) {
    throw new InvalidArgument('extra.step', `must be a non-negative integer, got ${String(extra?.step)}`);
  }
  const s = learner.state();
  const meta: LearnerMeta = {
    kind: LEARNER_CHECKPOINT_KIND,
    stateVersion: s.version,
    obsDim: s.obsDim,
    actDim: s.actDim,
    numEnvs: s.numEnvs,
    config: s.config,
    updates: s.updates,
    adamStep: s.adam.step,
    obsNormCount: s.obsNorm.count,
    rewardRmsCount: s.rewardScaler.rms.count,
    rng: s.rng,
    extra,
  };
  await writeCheckpoint(path, {
    meta,
    arrays: {
      params: s.params,
      'adam.m': s.adam.m,
      'adam.v': s.adam.v,
      'obs_norm.mean': s.obsNorm.mean,
      'obs_norm.var': s.obsNorm.var,
      'reward_rms.mean': s.rewardScaler.rms.mean,
      'reward_rms.var': s.rewardScaler.rms.var,
      'reward_scaler.returns': s.rewardScaler.returns,
    },
  });
}

/**
 * The learner state and extra stored at `path`. Throws FileNotFoundError, CheckpointCorrupt (damaged file, or a
 * checkpoint that is not a learner's: reason `malformed`, naming what is missing) with the path.
 */
export async function readLearnerCheckpoint(
  path: string,
): Promise<{ state: PpoLearnerState; extra: LearnerCheckpointExtra }> {
  const ckpt = await readCheckpoint<Partial<LearnerMeta>>(path);
  return decodeLearner(path, ckpt);
}

export interface LoadLearnerOptions {
  /** Fail unless the checkpoint was saved for this many observation values (as does actDim, numEnvs). */
  obsDim?: number;
  actDim?: number;
  numEnvs?: number;
  /** Constructor options that are not part of the saved state. */
  construct?: Partial<Omit<PpoLearnerOptions, 'obsDim' | 'actDim' | 'numEnvs' | 'seed' | 'config'>>;
}

/** A new learner, built with the saved config, continuing from the checkpoint at `path`. */
export async function loadLearnerCheckpoint(
  path: string,
  options: LoadLearnerOptions = {},
): Promise<{ learner: PpoLearner; extra: LearnerCheckpointExtra }> {
  const { state, extra } = await readLearnerCheckpoint(path);
  for (const key of ['obsDim', 'actDim', 'numEnvs'] as const) {
    const want = options[key];
    if (want !== undefined && want !== state[key]) throw dimensionMismatch(path, key, state[key], want);
  }
  const learner = new PpoLearner({
    ...options.construct,
    obsDim: state.obsDim,
    actDim: state.actDim,
    numEnvs: state.numEnvs,
    seed: 0,
    config: state.config,
  });
  learner.loadState(state);
  return { learner, extra };
}

/**
 * Restores the checkpoint at `path` into an existing learner (resuming a run whose learner is already built).
 * Dimensions must match; so must the network sizes (the config stored in the file is otherwise not applied).
 */
export async function restoreLearnerCheckpoint(
  path: string,
  learner: PpoLearner,
): Promise<{ extra: LearnerCheckpointExtra }> {
  const { state, extra } = await readLearnerCheckpoint(path);
  for (const key of ['obsDim', 'actDim', 'numEnvs'] as const) {
    if (state[key] !== learner[key]) throw dimensionMismatch(path, key, state[key], learner[key]);
  }
  try {
    learner.loadState(state);
  } catch (err) {
    if (err instanceof InvalidArgument) {
      throw new InvalidArgument(err.field, `${err.message.slice(err.field.length + 2)} (checkpoint ${path})`);
    }
    throw err;
  }
  return { extra };
}

function dimensionMismatch(path: string, key: string, saved: number, wanted: number): InvalidArgument {
  return new InvalidArgument(
    key,
    `checkpoint ${path} was saved by a learner with ${key} ${saved}; this one needs ${key} ${wanted} (a different env or observation layout?)`,
  );
}

function decodeLearner(
  path: string,
  ckpt: Checkpoint<Partial<LearnerMeta>>,
): { state: PpoLearnerState; extra: LearnerCheckpointExtra } {
  const { meta, arrays } = ckpt;
  const bad = (detail: string) =>
    new CheckpointCorrupt(path, 'malformed', `not a usable learner checkpoint: ${detail}`);
  if (meta.kind !== LEARNER_CHECKPOINT_KIND) {
    throw bad(`meta.kind is ${JSON.stringify(meta.kind)}, expected "${LEARNER_CHECKPOINT_KIND}"`);
  }
  if (meta.stateVersion !== 1) throw bad(`state version ${String(meta.stateVersion)}; this build reads 1`);
  const int = (key: 'obsDim' | 'actDim' | 'numEnvs' | 'updates' | 'adamStep'): number => {
    const v = meta[key];
    if (!Number.isSafeInteger(v) || (v as number) < 0) throw bad(`meta.${key} is ${String(v)}`);
    return v as number;
  };
  const num = (key: 'obsNormCount' | 'rewardRmsCount'): number => {
    const v = meta[key];
    if (typeof v !== 'number' || !(v >= 0)) throw bad(`meta.${key} is ${String(v)}`);
    return v;
  };
  const obsDim = int('obsDim');
  const actDim = int('actDim');
  const numEnvs = int('numEnvs');
  const rng = meta.rng;
  if (
    !rng ||
    !(['a', 'b', 'c', 'd'] as const).every((k) => Number.isInteger(rng[k])) ||
    !(rng.spare === null || typeof rng.spare === 'number')
  ) {
    throw bad(`meta.rng is ${JSON.stringify(rng)}`);
  }
  if (meta.config === null || typeof meta.config !== 'object') throw bad('meta.config is missing');
  const extra = meta.extra;
  if (extra === null || typeof extra !== 'object' || !Number.isSafeInteger(extra.step)) {
    throw bad('meta.extra.step is missing');
  }
  function section<T extends CheckpointArray>(
    name: string,
    ctor: { new (n: number): T; name: string },
    length?: number,
  ): T {
    const a = arrays[name];
    if (!(a instanceof ctor)) throw bad(`section ${name} (${ctor.name}) is missing`);
    if (length !== undefined && a.length !== length) {
      throw bad(`section ${name} has ${a.length} values, expected ${length}`);
    }
    return a;
  }
  const params = section('params', Float32Array);
  return {
    state: {
      version: 1,
      obsDim,
      actDim,
      numEnvs,
      config: meta.config,
      params,
      adam: {
        m: section('adam.m', Float32Array, params.length),
        v: section('adam.v', Float32Array, params.length),
        step: int('adamStep'),
      },
      obsNorm: {
        mean: section('obs_norm.mean', Float64Array, obsDim),
        var: section('obs_norm.var', Float64Array, obsDim),
        count: num('obsNormCount'),
      },
      rewardScaler: {
        rms: {
          mean: section('reward_rms.mean', Float64Array, 1),
          var: section('reward_rms.var', Float64Array, 1),
          count: num('rewardRmsCount'),
        },
        returns: section('reward_scaler.returns', Float64Array, numEnvs),
      },
      rng,
      updates: int('updates'),
    },
    extra,
  };
}
