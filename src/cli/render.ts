/**
 * `pbridge render`: PNG images of a task's cameras (or any MJCF's) at a seeded reset state, after a few policy
 * steps, or as a numbered frame sequence.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { parseArgs } from 'node:util';
import type { ManipulationEnv } from '../env/env.ts';
import { makeEnv } from '../env/make.ts';
import { DEFAULT_TASK, resolveTask } from '../env/registry.ts';
import { Rng } from '../env/rng.ts';
import {
  MAX_IMAGE_SIZE,
  MIN_IMAGE_SIZE,
  Renderer,
  type CameraSpec,
  type FreeCamera,
} from '../render/renderer.ts';
import { encodePng } from '../render/png.ts';
import { InvalidArgument } from '../sim/errors.ts';
import { loadMujoco, modelFromFile, type MjData, type MjModel, type Mujoco } from '../sim/mujoco.ts';
import { Progress } from './progress.ts';
import { BUILTIN_POLICIES, type BuiltinPolicy } from './rollout.ts';
import { intOption } from './options.ts';

export const RENDER_USAGE = `  render [--env NAME|PATH | --model PATH.xml] [--camera NAME|ID|all|free] [--size 224|WxH] [--seed 0]
         [--out FILE.png] [--steps N --policy expert|random|zero [--frames DIR]] [--json]
                                                  render cameras to PNG; --camera all: a strip of every camera
`;

/** Physics time per frame for `--model` sequences: the envs' control period (20 x 2 ms), so clips look alike. */
const MODEL_FRAME_DT = 0.04;

export interface RenderSummary {
  source: { env?: string; model?: string };
  cameras: string[];
  width: number;
  height: number;
  seed: number;
  policy: BuiltinPolicy | null;
  steps: number;
  /** Whether the episode ended (success or time limit) before `steps` steps. */
  ended_early: boolean;
  files: { path: string; bytes: number; width: number; height: number }[];
  frames: number;
  /** Per written image, all its views together; PNG encoding and file writing excluded. */
  render_ms_per_frame: number;
  png_ms_per_frame: number;
}

function parseSize(raw: string | undefined): { width: number; height: number } {
  if (raw === undefined) return { width: 224, height: 224 };
  const parts = raw.toLowerCase().split('x');
  if (parts.length > 2) {
    throw new InvalidArgument('--size', `must be N or WxH, got "${raw}"`);
  }
  const lim = (v: string): number => intOption('size', v, 0, MIN_IMAGE_SIZE, MAX_IMAGE_SIZE);
  const width = lim(parts[0]!);
  return { width, height: parts.length === 2 ? lim(parts[1]!) : width };
}

/**
 * MuJoCo's default free camera (`mjv_defaultFreeCamera`): looking at the model's centre from 1.5 extents away at
 * the model's `visual/global` azimuth and elevation, so a scene without cameras frames as `simulate` shows it.
 */
export function defaultFreeCamera(mj: Mujoco, model: MjModel, data: MjData): FreeCamera {
  let center: [number, number, number];
  let extent = model.stat.extent;
  const c = model.stat.center as ArrayLike<number> | undefined;
  if (c && c.length === 3 && Number.isFinite(extent) && extent > 0) {
    center = [c[0]!, c[1]!, c[2]!];
  } else {
    // Older bindings without model.stat: the box around the geoms' centres.
    mj.mj_forward(model, data);
    const xpos = data.geom_xpos as Float64Array;
    const lo = [Infinity, Infinity, Infinity];
    const hi = [-Infinity, -Infinity, -Infinity];
    for (let g = 0; g < model.ngeom; g++)
      for (let k = 0; k < 3; k++) {
        lo[k] = Math.min(lo[k]!, xpos[3 * g + k]!);
        hi[k] = Math.max(hi[k]!, xpos[3 * g + k]!);
      }
    center = model.ngeom > 0 ? ([0, 1, 2].map((k) => (lo[k]! + hi[k]!) / 2) as typeof center) : [0, 0, 0];
    extent =
      model.ngeom > 0 ? Math.max(0.1, Math.hypot(hi[0]! - lo[0]!, hi[1]! - lo[1]!, hi[2]! - lo[2]!)) : 1;
  }
  const g = model.vis.global;
  const az = (g.azimuth * Math.PI) / 180;
  const el = (g.elevation * Math.PI) / 180;
  const forward = [Math.cos(el) * Math.cos(az), Math.cos(el) * Math.sin(az), Math.sin(el)];
  const dist = 1.5 * extent;
  return {
    pos: [center[0] - dist * forward[0]!, center[1] - dist * forward[1]!, center[2] - dist * forward[2]!],
    lookAt: center,
    fovy: g.fovy,
  };
}

/** Copies equally sized frames side by side, left to right. */
export function hstack(frames: readonly Uint8Array[], width: number, height: number): Uint8Array {
  const n = frames.length;
  const out = new Uint8Array(n * width * height * 3);
  const row = width * 3;
  for (let i = 0; i < n; i++) {
    const f = frames[i]!;
    for (let y = 0; y < height; y++) out.set(f.subarray(y * row, (y + 1) * row), (y * n + i) * row);
  }
  return out;
}

interface Scene {
  mj: Mujoco;
  model: MjModel;
  data: MjData;
  env?: ManipulationEnv;
  label: string;
  close(): void;
}

async function openScene(
  envSpec: string | undefined,
  modelPath: string | undefined,
  seed: number,
): Promise<Scene> {
  if (modelPath !== undefined) {
    const mj = await loadMujoco();
    const model = modelFromFile(mj, modelPath);
    const data = new mj.MjData(model);
    // A model's first keyframe is usually its intended start pose ("home"); qpos0 otherwise.
    if (model.nkey > 0) mj.mj_resetDataKeyframe(model, data, 0);
    else mj.mj_resetData(model, data);
    mj.mj_forward(model, data);
    return {
      mj,
      model,
      data,
      label: basename(modelPath, extname(modelPath)),
      close: () => {
        data.delete();
        model.delete();
      },
    };
  }
  const task = await resolveTask(envSpec ?? DEFAULT_TASK);
  const env = await makeEnv(task);
  env.reset({ seed });
  return { mj: env.mj, model: env.model, data: env.data, env, label: task.name, close: () => env.close() };
}

/** The camera list `--camera` selects: names for the model's cameras, `free` for the default free camera. */
function selectCameras(
  raw: string | undefined,
  renderer: Renderer,
): { label: string; spec: CameraSpec | 'free' }[] {
  const names = renderer.cameraNames;
  if (raw === undefined) {
    if (names.length === 0) return [{ label: 'free', spec: 'free' }];
    const first = names.includes('front') ? 'front' : names[0]!;
    return [{ label: first, spec: first }];
  }
  if (raw === 'all') {
    if (names.length === 0) return [{ label: 'free', spec: 'free' }];
    return names.map((n, i) => ({ label: n, spec: n.startsWith('#') ? i : n }));
  }
  // A camera the model itself names `free` wins over the keyword.
  if (raw === 'free' && !names.includes('free')) return [{ label: 'free', spec: 'free' }];
  if (/^\d+$/.test(raw) && !names.includes(raw)) return [{ label: `#${raw}`, spec: Number(raw) }];
  // Unknown names go to the renderer, whose UnknownCamera error lists the valid ones.
  return [{ label: raw, spec: raw }];
}

export async function renderCommand(args: string[]): Promise<RenderSummary> {
  const { values } = parseArgs({
    args,
    options: {
      env: { type: 'string' },
      model: { type: 'string' },
      camera: { type: 'string' },
      size: { type: 'string' },
      seed: { type: 'string' },
      out: { type: 'string' },
      steps: { type: 'string' },
      policy: { type: 'string' },
      frames: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  if (values.env !== undefined && values.model !== undefined) {
    throw new InvalidArgument('--model', 'give either --env or --model, not both');
  }
  const { width, height } = parseSize(values.size);
  const seed = intOption('seed', values.seed, 0, 0, 2 ** 32 - 1);
  const steps = intOption('steps', values.steps, 0, 0, 100_000);
  const policy = (values.policy ?? (steps > 0 ? 'expert' : undefined)) as BuiltinPolicy | undefined;
  if (policy !== undefined && !BUILTIN_POLICIES.includes(policy)) {
    throw new InvalidArgument('--policy', `must be one of ${BUILTIN_POLICIES.join(', ')}, got "${policy}"`);
  }
  if (values.model !== undefined && policy === 'expert') {
    throw new InvalidArgument(
      '--policy',
      'a bare --model has no task and so no expert; use random or zero, or --env with a task',
    );
  }
  if (values.frames !== undefined && steps === 0) {
    throw new InvalidArgument('--frames', 'writes a sequence: give --steps N (N >= 1) with it');
  }

  const scene = await openScene(values.env, values.model, seed);
  try {
    const { mj, model, data, env } = scene;
    const renderer = new Renderer(mj, model);
    const cams = selectCameras(values.camera, renderer);
    const free = cams.some((c) => c.spec === 'free') ? defaultFreeCamera(mj, model, data) : undefined;
    const specs = cams.map((c) => (c.spec === 'free' ? free! : c.spec));
    const camLabel = values.camera === 'all' ? 'all' : cams[0]!.label.replace(/^#/, 'cam');
    const summary: RenderSummary = {
      source: values.model !== undefined ? { model: values.model } : { env: scene.label },
      cameras: cams.map((c) => c.label),
      width: width * specs.length,
      height,
      seed,
      policy: policy ?? null,
      steps: 0,
      ended_early: false,
      files: [],
      frames: 0,
      render_ms_per_frame: 0,
      png_ms_per_frame: 0,
    };
    let renderMs = 0;
    let pngMs = 0;
    const write = (path: string): void => {
      const t0 = performance.now();
      // The renderer reuses one frame per size: copy each view out before rendering the next.
      const views = specs.map((s) => renderer.render(data, s, width, height).rgb.slice());
      const rgb = views.length === 1 ? views[0]! : hstack(views, width, height);
      const t1 = performance.now();
      const png = encodePng(rgb, summary.width, height);
      pngMs += performance.now() - t1;
      renderMs += t1 - t0;
      writeFileSync(path, png);
      summary.files.push({ path, bytes: png.length, width: summary.width, height });
      summary.frames++;
    };

    const framesDir = values.frames;
    if (framesDir !== undefined) mkdirSync(framesDir, { recursive: true });
    const framePath = (i: number): string => join(framesDir!, `frame_${String(i).padStart(4, '0')}.png`);
    if (framesDir !== undefined) write(framePath(0));

    const progress = new Progress(steps, `render ${scene.label}`, !values.json && steps > 0);
    const rng = new Rng(seed ^ 0xa5a5a5a5);
    if (env) {
      const action = new Float32Array(env.actDim);
      const obs = new Float32Array(env.obsDim);
      for (let t = 0; t < steps; t++) {
        if (policy === 'expert') env.expertAction(action);
        else if (policy === 'random') env.actionSpace.sample(rng, action);
        else action.fill(0);
        const flags = env.stepInto(action, obs, 0);
        summary.steps++;
        if (framesDir !== undefined) write(framePath(t + 1));
        progress.update(t + 1, flags.success ? 'success' : '');
        if (flags.terminated || flags.truncated) {
          summary.ended_early = t + 1 < steps;
          break;
        }
      }
    } else {
      const substeps = Math.max(1, Math.round(MODEL_FRAME_DT / model.opt.timestep));
      const ctrl = data.ctrl as Float64Array;
      // The bindings cannot read actuator_ctrllimited (a bool array); the compiler leaves the range of an
      // unlimited actuator empty (lo >= hi), which says the same.
      const range = model.actuator_ctrlrange as Float64Array;
      for (let t = 0; t < steps; t++) {
        for (let i = 0; i < model.nu; i++) {
          const lo = range[2 * i]!;
          const hi = range[2 * i + 1]!;
          if (policy !== 'random') ctrl[i] = 0;
          else ctrl[i] = lo < hi ? rng.uniform(lo, hi) : rng.uniform(-1, 1);
        }
        for (let k = 0; k < substeps; k++) mj.mj_step(model, data);
        // mj_step leaves derived quantities (camera poses included) one substep behind the state.
        mj.mj_forward(model, data);
        summary.steps++;
        if (framesDir !== undefined) write(framePath(t + 1));
        progress.update(t + 1, '');
      }
    }
    progress.finish();
    if (framesDir === undefined || values.out !== undefined) {
      write(values.out ?? `${scene.label}-${camLabel}.png`);
    }
    summary.render_ms_per_frame = renderMs / summary.frames;
    summary.png_ms_per_frame = pngMs / summary.frames;
    return summary;
  } finally {
    scene.close();
  }
}

/** The `render` command: runs it and prints the summary. */
export async function cmdRender(args: string[]): Promise<void> {
  const json = args.includes('--json');
  const s = await renderCommand(args);
  if (json) {
    console.log(JSON.stringify(s, null, 2));
    return;
  }
  const src = s.source.env !== undefined ? `env ${s.source.env} (seed ${s.seed})` : `model ${s.source.model}`;
  console.log(`source:    ${src}`);
  console.log(`cameras:   ${s.cameras.join(', ')}`);
  if (s.policy !== null) {
    console.log(
      `steps:     ${s.steps} with policy ${s.policy}${s.ended_early ? ' (the episode ended early)' : ''}`,
    );
  }
  const first = s.files[0]!;
  const last = s.files[s.files.length - 1]!;
  console.log(
    s.files.length === 1
      ? `wrote:     ${first.path} (${first.width}x${first.height}, ${first.bytes} bytes)`
      : `wrote:     ${s.files.length} files, ${first.path} .. ${last.path} (${first.width}x${first.height})`,
  );
  console.log(
    `time:      ${s.render_ms_per_frame.toFixed(2)} ms rendering + ${s.png_ms_per_frame.toFixed(2)} ms PNG per image`,
  );
}
