/**
 * Section 1: what the env layer costs on top of the raw mj_step loop.
 *
 * The env runs a fixed seeded random action sequence (resets included); the ctrl rows it writes are recorded and
 * replayed by the raw loop on a fresh MjData of the same compiled model from the same start states, so both
 * integrate the same trajectory (checked by a qpos fingerprint). Raw, `stepInto` and `step()` passes are
 * interleaved and repeated; medians are reported.
 */
import type { ManipulationEnv } from '../src/env/env.ts';
import { makeEnv } from '../src/env/make.ts';
import {
  playRaw,
  qposChecksum,
  randomActions,
  recordReplay,
  replaySteps,
  runEnv,
  type Replay,
} from './replay.ts';
import { median, progress, timeBoth, timeIt, type Timing } from './stats.ts';

export interface OverheadResult {
  task: string;
  frameSkip: number;
  nq: number;
  nv: number;
  nu: number;
  controlSteps: number;
  episodes: number;
  repeats: number;
  /** Rates below are per CPU second of this process (see `timeBoth`); `wall` has the wall-clock ones. */
  /** Raw loop: mj_step per second. */
  rawStepsPerSec: number;
  /** env.stepInto control steps per second (and physics steps = x frameSkip). */
  envStepsPerSec: number;
  /** env.step() control steps per second. */
  envStepApiPerSec: number;
  /** 1 - env physics steps/s / raw mj_step/s (median of per-repeat paired ratios). */
  overhead: number;
  overheadStepApi: number;
  wall: { rawStepsPerSec: number; envStepsPerSec: number; overhead: number };
  /** The raw replay reached the same final qpos as the env run (bit for bit). */
  sameTrajectory: boolean;
  /** Cost per control step of each env-side part, microseconds (measured in isolation). */
  breakdownUs: { physics: number; action: number; kinematics: number; observe: number; envSide: number };
  /** Arena bytes MuJoCo reports using at most during the run, and what it allocated. */
  maxuseArena: number;
  narena: number;
  nbuffer: number;
  replay: Replay;
}

export interface OverheadConfig {
  controlSteps: number;
  repeats: number;
  seed: number;
}

interface Rates {
  wall: number[];
  cpu: number[];
}

function push(into: Rates, work: number, t: Timing): void {
  into.wall.push(work / t.wall);
  into.cpu.push(work / t.cpu);
}

/**
 * 1 - median over repeats of (env physics steps/s) / (raw mj_step/s), each ratio from passes run back to back:
 * pairing cancels slow drift in background load better than a ratio of medians.
 */
function pairedOverhead(env: number[], raw: number[], frameSkip: number): number {
  return 1 - median(env.map((e, i) => (e * frameSkip) / raw[i]!));
}

/** Microseconds per call of `fn`, over `n` calls. */
function perCallUs(n: number, fn: () => void): number {
  return (
    (timeIt(() => {
      for (let i = 0; i < n; i++) fn();
    }) *
      1e6) /
    n
  );
}

/**
 * All env-side work per control step, measured whole: an env with frameSkip 1 against the raw loop replaying
 * it (same trajectory), over many steps; env-side = 1 / env steps/s - 1 / raw mj_step/s, in microseconds.
 * Long passes make this steadier than the frameSkip-20 overhead on a busy machine.
 */
async function envSideUs(task: string, seed: number, steps: number, repeats: number): Promise<number> {
  const env = await makeEnv(task, { frameSkip: 1 });
  const raw = new env.mj.MjData(env.model);
  try {
    const actions = randomActions(seed + 1, steps, env.actDim);
    const replay = recordReplay(env, actions, seed);
    const obs = new Float32Array(env.obsDim);
    const n = replaySteps(replay);
    playRaw(env.mj, env.model, raw, replay, n, 'full');
    const diffs: number[] = [];
    for (let r = 0; r < repeats; r++) {
      const tr = timeBoth(() => playRaw(env.mj, env.model, raw, replay, n, 'full')).cpu / n;
      const te = timeBoth(() => runEnv(env, actions, seed, obs, 'stepInto')).cpu / steps;
      diffs.push((te - tr) * 1e6);
    }
    return median(diffs);
  } finally {
    raw.delete();
    env.close();
  }
}

function breakdown(
  env: ManipulationEnv,
  rawStepsPerSec: number,
  envSide: number,
): OverheadResult['breakdownUs'] {
  const { mj, model, data } = env;
  const action = new Float32Array(env.actDim).fill(0.3);
  const obs = new Float32Array(env.obsDim);
  const ctrl = Float64Array.from(data.ctrl as Float64Array);
  const n = 2000;
  // Each part alone on the env's current state; ctrl is restored afterwards, the state is not stepped.
  const act = perCallUs(n, () => env.robot.apply(data, action, env.actionMode));
  (data.ctrl as Float64Array).set(ctrl);
  const kin = perCallUs(n, () => {
    mj.mj_kinematics(model, data);
    mj.mj_comPos(model, data);
  });
  const observe = perCallUs(n, () => {
    env.isSuccess();
    env.observeInto(obs, 0);
  });
  return { physics: (env.frameSkip / rawStepsPerSec) * 1e6, action: act, kinematics: kin, observe, envSide };
}

export async function measureOverhead(task: string, cfg: OverheadConfig): Promise<OverheadResult> {
  const env = await makeEnv(task);
  const { mj, model } = env;
  try {
    const actions = randomActions(cfg.seed, cfg.controlSteps, env.actDim);
    // The recording pass doubles as the env's warm-up (controlSteps * frameSkip >= 3000 mj_steps).
    const replay = recordReplay(env, actions, cfg.seed);
    const maxuseArena = env.data.maxuse_arena;
    const raw = new mj.MjData(model);
    try {
      const steps = replaySteps(replay);
      playRaw(mj, model, raw, replay, steps, 'full'); // warm-up, and the trajectory check
      const sameTrajectory = qposChecksum(raw) === replay.checksum;
      const obs = new Float32Array(env.obsDim);
      const rawT: Rates = { wall: [], cpu: [] };
      const into: Rates = { wall: [], cpu: [] };
      const api: Rates = { wall: [], cpu: [] };
      const passes: Array<() => void> = [
        () =>
          push(
            rawT,
            steps,
            timeBoth(() => playRaw(mj, model, raw, replay, steps, 'full')),
          ),
        () =>
          push(
            into,
            cfg.controlSteps,
            timeBoth(() => runEnv(env, actions, cfg.seed, obs, 'stepInto')),
          ),
        () =>
          push(
            api,
            cfg.controlSteps,
            timeBoth(() => runEnv(env, actions, cfg.seed, obs, 'step')),
          ),
      ];
      for (let r = 0; r < cfg.repeats; r++) {
        // Rotate the order so drift from other load on the machine does not favour one loop.
        for (let k = 0; k < passes.length; k++) passes[(r + k) % passes.length]!();
      }
      const fs = env.frameSkip;
      const rawStepsPerSec = median(rawT.cpu);
      const envStepsPerSec = median(into.cpu);
      const envStepApiPerSec = median(api.cpu);
      const result: OverheadResult = {
        task,
        frameSkip: env.frameSkip,
        nq: model.nq,
        nv: model.nv,
        nu: model.nu,
        controlSteps: cfg.controlSteps,
        episodes: replay.episodes.length,
        repeats: cfg.repeats,
        rawStepsPerSec,
        envStepsPerSec,
        envStepApiPerSec,
        overhead: pairedOverhead(into.cpu, rawT.cpu, fs),
        overheadStepApi: pairedOverhead(api.cpu, rawT.cpu, fs),
        wall: {
          rawStepsPerSec: median(rawT.wall),
          envStepsPerSec: median(into.wall),
          overhead: pairedOverhead(into.wall, rawT.wall, fs),
        },
        sameTrajectory,
        breakdownUs: breakdown(
          env,
          rawStepsPerSec,
          await envSideUs(task, cfg.seed, cfg.controlSteps * 10, 3),
        ),
        maxuseArena,
        narena: env.data.narena,
        nbuffer: env.data.nbuffer,
        replay,
      };
      progress(
        `${task}: raw ${Math.round(rawStepsPerSec)} mj_step/s, env ${Math.round(envStepsPerSec)} steps/s ` +
          `(x${env.frameSkip} = ${Math.round(envStepsPerSec * env.frameSkip)} physics steps/s), ` +
          `overhead ${(100 * result.overhead).toFixed(1)}% (CPU time; wall clock ${(100 * result.wall.overhead).toFixed(1)}%)` +
          (sameTrajectory ? '' : ' [raw replay diverged from the env run]'),
      );
      return result;
    } finally {
      raw.delete();
    }
  } finally {
    env.close();
  }
}
