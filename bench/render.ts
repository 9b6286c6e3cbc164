/**
 * Section 4: camera rendering throughput, and what rendering every camera costs beside the physics of a control
 * step.
 *
 * States come from a seeded random-action rollout of the task's env (resets included), so the arm and objects
 * are spread over the poses training sees. Per state, all of the scene's cameras are rendered at each size; the
 * state is restored (`mj_setState` + `mj_forward`) outside the timed region. Rates are per CPU second of the
 * process, like section 1, with wall clock beside. Physics time is `env.stepInto` per control step, timed in
 * the same run over the same rollout.
 */
import { makeEnv } from '../src/env/make.ts';
import { Rng } from '../src/env/rng.ts';
import { Renderer } from '../src/render/renderer.ts';
import { getState, setState, type MjData, type MjModel, type Mujoco } from '../src/sim/mujoco.ts';
import { median, progress, timeBoth } from './stats.ts';

export interface RenderSizeResult {
  size: number;
  /** Frames (one camera each) per CPU second; median over repeats. */
  framesPerCpuSec: number;
  framesPerWallSec: number;
  /** CPU milliseconds to render all cameras once (one control step's observation). */
  msPerStepAllViews: number;
}

export interface RenderBenchResult {
  task: string;
  cameras: string[];
  states: number;
  repeats: number;
  /** CPU milliseconds of one `env.stepInto` (frameSkip physics steps plus the env layer), median over repeats. */
  physicsMsPerStep: number;
  frameSkip: number;
  sizes: RenderSizeResult[];
  /**
   * The alternative technique on the same states: MuJoCo's own ray casting (`mj_multiRay`, one ray per pixel of
   * the first camera at RENDER_TARGET_SIZE, returning depth, geom id and normal, before any shading), in frames
   * per CPU second, and the rasteriser's finished RGB frames per CPU second at that size for comparison.
   */
  rayCast?: { size: number; camera: string; framesPerCpuSec: number; rasterFramesPerCpuSec: number };
}

export interface RenderBenchConfig {
  sizes: readonly number[];
  states: number;
  repeats: number;
  seed: number;
}

/** Frames per second at 128 x 128 the renderer should reach (one core). */
export const RENDER_TARGET_FPS = 1000;
export const RENDER_TARGET_SIZE = 128;

export async function measureRender(task: string, config: RenderBenchConfig): Promise<RenderBenchResult> {
  const env = await makeEnv(task);
  try {
    const { mj, model, data } = env;
    const renderer = new Renderer(mj, model);
    const cameras = [...renderer.cameraNames];
    const rng = new Rng(config.seed ^ 0x7e4d);
    // Actions drawn up front so sampling is not timed with the physics.
    const steps = Math.max(config.states, 100);
    const actions = Array.from({ length: steps }, () => env.actionSpace.sample(rng));
    const obs = new Float32Array(env.obsDim);
    const states: Float64Array[] = [];
    const stepEvery = Math.max(1, Math.floor(steps / config.states));

    // Timed regions span whole loops: the process CPU clock advances in scheduler ticks on some kernels, too
    // coarse for one step or one frame.
    const rollout = (record: boolean): number => {
      env.resetInto(obs, 0, config.seed);
      const t = timeBoth(() => {
        for (let i = 0; i < steps; i++) {
          const f = env.stepInto(actions[i]!, obs, 0);
          if (f.terminated || f.truncated) env.resetInto(obs, 0, config.seed + i + 1);
          if (record && i % stepEvery === 0 && states.length < config.states)
            states.push(getState(mj, model, data));
        }
      });
      return (1000 * t.cpu) / steps;
    };
    rollout(true);
    const physics: number[] = [];
    for (let r = 0; r < config.repeats; r++) physics.push(rollout(false));
    const renderAll = (size: number): void => {
      for (const cam of cameras) renderer.render(data, cam, size, size);
    };
    const sizes: RenderSizeResult[] = [];
    for (const size of config.sizes) {
      // Warm-up: one pass over the states (JIT tiers, frame buffers of this size).
      for (const s of states) {
        setState(mj, model, data, s);
        renderAll(size);
      }
      const cpuRates: number[] = [];
      const wallRates: number[] = [];
      for (let r = 0; r < config.repeats; r++) {
        // Restoring states is not rendering: time it alone and take it off.
        const restore = timeBoth(() => {
          for (const s of states) setState(mj, model, data, s);
        });
        const both = timeBoth(() => {
          for (const s of states) {
            setState(mj, model, data, s);
            renderAll(size);
          }
        });
        const frames = states.length * cameras.length;
        cpuRates.push(frames / Math.max(both.cpu - restore.cpu, 1e-9));
        wallRates.push(frames / Math.max(both.wall - restore.wall, 1e-9));
      }
      const fps = median(cpuRates);
      sizes.push({
        size,
        framesPerCpuSec: fps,
        framesPerWallSec: median(wallRates),
        msPerStepAllViews: (1000 * cameras.length) / fps,
      });
      progress(`render ${task} ${size}x${size}: ${fps.toFixed(0)} frames/s per core`);
    }
    const raster = sizes.find((x) => x.size === RENDER_TARGET_SIZE);
    const rayCast = raster
      ? measureRayCast(mj, model, data, renderer, cameras[0]!, states, config.repeats)
      : undefined;
    if (rayCast) {
      rayCast.rasterFramesPerCpuSec = raster!.framesPerCpuSec;
      progress(
        `ray casting ${task} ${RENDER_TARGET_SIZE}x${RENDER_TARGET_SIZE}: ${rayCast.framesPerCpuSec.toFixed(0)} frames/s per core`,
      );
    }
    return {
      ...(rayCast ? { rayCast } : {}),
      task,
      cameras,
      states: states.length,
      repeats: config.repeats,
      physicsMsPerStep: median(physics),
      frameSkip: env.frameSkip,
      sizes,
    };
  } finally {
    env.close();
  }
}

/**
 * mj_multiRay for every pixel of `camera` at RENDER_TARGET_SIZE: the ray-casting renderer's irreducible part
 * (depth, geom id and normal per pixel; shading would come on top).
 */
function measureRayCast(
  mj: Mujoco,
  model: MjModel,
  data: MjData,
  renderer: Renderer,
  camera: string,
  states: Float64Array[],
  repeats: number,
): { size: number; camera: string; framesPerCpuSec: number; rasterFramesPerCpuSec: number } {
  const size = RENDER_TARGET_SIZE;
  const n = size * size;
  const geomid = new mj.IntBuffer(n);
  const dist = new mj.DoubleBuffer(n);
  const normal = new mj.DoubleBuffer(3 * n);
  const vec = new Array<number>(3 * n);
  const group = [1, 1, 1, 0, 0, 0];
  // Ray directions through pixel centres, from the camera pose of the current state (pinhole, as the renderer).
  const aim = (): number[] => {
    const id = renderer.cameraNames.indexOf(camera);
    const pos = data.cam_xpos as Float64Array;
    const R = data.cam_xmat as Float64Array;
    const f = size / 2 / Math.tan(((model.cam_fovy as Float64Array)[id]! * Math.PI) / 360);
    for (let v = 0; v < size; v++) {
      for (let u = 0; u < size; u++) {
        const x = (u + 0.5 - size / 2) / f;
        const y = -(v + 0.5 - size / 2) / f;
        const l = Math.hypot(x, y, 1);
        const i = 3 * (v * size + u);
        for (let k = 0; k < 3; k++)
          vec[i + k] = (R[9 * id + 3 * k]! * x + R[9 * id + 3 * k + 1]! * y - R[9 * id + 3 * k + 2]!) / l;
      }
    }
    return [pos[3 * id]!, pos[3 * id + 1]!, pos[3 * id + 2]!];
  };
  try {
    const rates: number[] = [];
    for (let r = 0; r < repeats; r++) {
      const origins = states.map((s) => {
        setState(mj, model, data, s);
        return aim();
      });
      const t = timeBoth(() => {
        states.forEach((s, k) => {
          setState(mj, model, data, s);
          mj.mj_multiRay(model, data, origins[k]!, vec, group, true, -1, geomid, dist, normal, n, 100);
        });
      });
      const restore = timeBoth(() => {
        for (const s of states) setState(mj, model, data, s);
      });
      rates.push(states.length / Math.max(t.cpu - restore.cpu, 1e-9));
    }
    return { size, camera, framesPerCpuSec: median(rates), rasterFramesPerCpuSec: 0 };
  } finally {
    geomid.delete();
    dist.delete();
    normal.delete();
  }
}
