/**
 * Recorded control: the episodes an env produced from a fixed action sequence (start state and the ctrl row it
 * wrote at each control step), and the raw loops that replay them (`mj_step` x frameSkip per ctrl row, nothing
 * else) in WASM here and in native MuJoCo (bench/native/step.c reads `encodeReplay`'s format).
 */
import type { ManipulationEnv } from '../src/env/env.ts';
import { Rng } from '../src/env/rng.ts';
import type { MjData, MjModel, Mujoco } from '../src/sim/mujoco.ts';
import { getState, setState } from '../src/sim/mujoco.ts';

export interface Episode {
  /** Full integration state right after reset (mjSTATE_INTEGRATION, for the 3.x WASM loop). */
  state: Float64Array;
  /** The parts of it MuJoCo 2.2 can restore too. */
  qpos: Float64Array;
  qvel: Float64Array;
  act: Float64Array;
  mocapPos: Float64Array;
  mocapQuat: Float64Array;
  /** One row of `nu` ctrl values per control step: `[steps * nu]`. */
  ctrl: Float64Array;
  steps: number;
}

export interface Replay {
  nq: number;
  nv: number;
  na: number;
  nmocap: number;
  nu: number;
  frameSkip: number;
  episodes: Episode[];
  /** Sum of qpos at the end of the recorded run (trajectory fingerprint). */
  checksum: number;
}

/** `[steps * actDim]` uniform actions in [-1, 1] from a seeded generator. */
export function randomActions(seed: number, steps: number, actDim: number): Float32Array {
  const rng = new Rng(seed);
  const out = new Float32Array(steps * actDim);
  for (let i = 0; i < out.length; i++) out[i] = rng.uniform(-1, 1);
  return out;
}

export function qposChecksum(data: MjData): number {
  let s = 0;
  for (const v of data.qpos as Float64Array) s += v;
  return s;
}

/**
 * The timed env loop: reset with `seed`, then `stepInto` over the action rows, resetting (seed continued) when an
 * episode ends. `onReset` / `onStep` see the data after each reset / control step (for recording).
 */
export function runEnv(
  env: ManipulationEnv,
  actions: Float32Array,
  seed: number,
  obs: Float32Array,
  api: 'stepInto' | 'step' = 'stepInto',
  onReset?: () => void,
  onStep?: () => void,
): void {
  const dim = env.actDim;
  const steps = actions.length / dim;
  env.resetInto(obs, 0, seed);
  onReset?.();
  for (let t = 0; t < steps; t++) {
    const a = actions.subarray(t * dim, (t + 1) * dim);
    let done: boolean;
    if (api === 'stepInto') {
      const f = env.stepInto(a, obs, 0);
      done = f.terminated || f.truncated;
    } else {
      const r = env.step(a);
      done = r.terminated || r.truncated;
    }
    onStep?.();
    if (done && t + 1 < steps) {
      env.resetInto(obs, 0);
      onReset?.();
    }
  }
}

/** Runs the env loop once and records what it wrote into MuJoCo. */
export function recordReplay(env: ManipulationEnv, actions: Float32Array, seed: number): Replay {
  const { mj, model, data } = env;
  const nu = model.nu;
  const episodes: Episode[] = [];
  let rows: number[] = [];
  const finish = (): void => {
    const ep = episodes[episodes.length - 1];
    if (ep) {
      ep.ctrl = Float64Array.from(rows);
      ep.steps = rows.length / nu;
    }
    rows = [];
  };
  const obs = new Float32Array(env.obsDim);
  runEnv(
    env,
    actions,
    seed,
    obs,
    'stepInto',
    () => {
      finish();
      episodes.push({
        state: getState(mj, model, data),
        qpos: Float64Array.from(data.qpos as Float64Array),
        qvel: Float64Array.from(data.qvel as Float64Array),
        act: Float64Array.from(data.act as Float64Array),
        mocapPos: Float64Array.from(data.mocap_pos as Float64Array),
        mocapQuat: Float64Array.from(data.mocap_quat as Float64Array),
        ctrl: new Float64Array(0),
        steps: 0,
      });
    },
    () => {
      const ctrl = data.ctrl as Float64Array;
      for (let i = 0; i < nu; i++) rows.push(ctrl[i]!);
    },
  );
  finish();
  return {
    nq: model.nq,
    nv: model.nv,
    na: model.na,
    nmocap: model.nmocap,
    nu,
    frameSkip: env.frameSkip,
    episodes,
    checksum: qposChecksum(data),
  };
}

/**
 * How an episode starts in the raw loop: `full` restores the recorded integration state (bit-identical to the
 * env), `basic` does what MuJoCo 2.2 can (mj_resetData, qpos/qvel/act/mocap, mj_forward), as step.c does.
 */
export type StartMode = 'full' | 'basic';

function startEpisode(mj: Mujoco, model: MjModel, data: MjData, ep: Episode, mode: StartMode): void {
  if (mode === 'full') {
    setState(mj, model, data, ep.state);
    return;
  }
  mj.mj_resetData(model, data);
  (data.qpos as Float64Array).set(ep.qpos);
  (data.qvel as Float64Array).set(ep.qvel);
  if (ep.act.length > 0) (data.act as Float64Array).set(ep.act);
  if (ep.mocapPos.length > 0) {
    (data.mocap_pos as Float64Array).set(ep.mocapPos);
    (data.mocap_quat as Float64Array).set(ep.mocapQuat);
  }
  mj.mj_forward(model, data);
}

/**
 * The raw WASM loop: plays the recorded episodes in order (cycling) until at least `minSteps` mj_steps ran.
 * Per control step it writes the ctrl row and calls mj_step frameSkip times; nothing else. Returns mj_steps run.
 */
export function playRaw(
  mj: Mujoco,
  model: MjModel,
  data: MjData,
  replay: Replay,
  minSteps: number,
  mode: StartMode,
): number {
  const { nu, frameSkip, episodes } = replay;
  let steps = 0;
  let e = 0;
  while (steps < minSteps) {
    const ep = episodes[e]!;
    e = (e + 1) % episodes.length;
    startEpisode(mj, model, data, ep, mode);
    for (let t = 0; t < ep.steps; t++) {
      (data.ctrl as Float64Array).set(ep.ctrl.subarray(t * nu, (t + 1) * nu));
      for (let k = 0; k < frameSkip; k++) mj.mj_step(model, data);
    }
    steps += ep.steps * frameSkip;
  }
  return steps;
}

/** mj_steps one pass over all recorded episodes takes. */
export function replaySteps(replay: Replay): number {
  return replay.episodes.reduce((s, ep) => s + ep.steps, 0) * replay.frameSkip;
}

/** The binary replay file bench/native/step.c reads (little-endian float64, layout in step.c). */
export function encodeReplay(replay: Replay): Buffer {
  const parts: number[] = [
    replay.nq,
    replay.nv,
    replay.na,
    replay.nmocap,
    replay.nu,
    replay.frameSkip,
    replay.episodes.length,
  ];
  for (const ep of replay.episodes) {
    parts.push(ep.steps, ...ep.qpos, ...ep.qvel, ...ep.act, ...ep.mocapPos, ...ep.mocapQuat, ...ep.ctrl);
  }
  const arr = Float64Array.from(parts);
  return Buffer.from(arr.buffer, arr.byteOffset, arr.byteLength);
}
