/**
 * The bridge commands: `serve` (a bridge and viewer with nothing to show until a publisher connects), `view`
 * (any MJCF simulated passively in real time, like MuJoCo's desktop viewer but in the browser) and
 * `rollout --serve` (a policy rolled out in real time, with scene, poses, per-step Phi and rewards, episode
 * summaries and camera thumbnails streamed to viewers).
 */
import { parseArgs } from 'node:util';
import { basename } from 'node:path';
import { BridgeServer } from '../bridge/server.ts';
import type { RigHostOptions } from '../bridge/rig/host.ts';
import { RIG_SERVE_OPTIONS, RIG_SERVE_USAGE, rigServeOptions } from './rig.ts';
import { PoseReader, sceneFromModel } from '../bridge/scene-source.ts';
import { ensureViewerBuilt } from '../bridge/viewer-build.ts';
import type { ManipulationEnv } from '../env/env.ts';
import { makeEnv } from '../env/make.ts';
import { Rng } from '../env/rng.ts';
import type { TaskDefinition } from '../env/task.ts';
import { encodePng } from '../render/png.ts';
import { Renderer } from '../render/renderer.ts';
import { checkShapingConfig, shapedReward } from '../reward/shaping.ts';
import { InvalidArgument } from '../sim/errors.ts';
import { loadMujoco, modelFromFile, namesOf } from '../sim/mujoco.ts';
import type { ActionMode } from '../../robots/arm7/controller.ts';
import { intOption } from './options.ts';
import type { BuiltinPolicy } from './rollout.ts';

export const SERVE_USAGE = `  serve [--port 8787] [--host 127.0.0.1] [--rate 30]
                                                  bridge + browser viewer; publishers connect with the token
${RIG_SERVE_USAGE}  view PATH.xml [--port 8787] [--host 127.0.0.1]   simulate any MJCF passively and show it in the browser
  rollout ... --serve [--port 8787] [--host H] [--num-envs 1]
                                                  roll out in real time and stream it to the browser viewer
                                                  (until Ctrl-C, or --episodes in total if given)
  build-viewer                                    build the browser viewer now (otherwise built on first use)
`;

/** Thumbnail size (pixels, square): small enough to encode in about a millisecond. */
const THUMB_SIZE = 96;

export interface BridgeCliOptions {
  /** Rig role (episode store, policy, reward model); without it the bridge refuses rigs. */
  rig?: RigHostOptions;
  port: number;
  host: string;
  rateHz: number;
}

export function bridgeOptions(values: { port?: string; host?: string; rate?: string }): BridgeCliOptions {
  return {
    port: intOption('port', values.port, 8787, 0, 65535),
    host: values.host ?? '127.0.0.1',
    rateHz: intOption('rate', values.rate, 30, 1, 240),
  };
}

/** Builds the viewer if needed, starts the bridge and prints where to look (stdout: `viewer: URL`). */
export async function startBridge(
  o: BridgeCliOptions,
  print: (line: string) => void = (line) => console.log(line),
): Promise<BridgeServer> {
  const staticDir = await ensureViewerBuilt((line) => console.error(line));
  const server = await BridgeServer.start({
    port: o.port,
    host: o.host,
    rateHz: o.rateHz,
    staticDir,
    ...(o.rig ? { rig: o.rig } : {}),
    log: process.env.PBRIDGE_DEBUG ? (line) => console.error(`bridge: ${line}`) : undefined,
  }).catch((err: unknown) => {
    throw listenRefused(err, o) ?? err;
  });
  print(`viewer: ${server.viewerUrl()}`);
  print(`bridge: ${server.wsUrl} (subprotocol progress-bridge.v1, ${o.rateHz} Hz)`);
  if (server.tokenGenerated) {
    print(`token:  ${server.token} (publishers need it; set PBRIDGE_TOKEN to choose your own)`);
  }
  return server;
}

/** The socket errors a user causes by the address they chose, as errors naming the flag to change. */
function listenRefused(err: unknown, o: BridgeCliOptions): InvalidArgument | undefined {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const at = `${o.host}:${o.port}`;
  if (code === 'EADDRINUSE') {
    return new InvalidArgument(
      '--port',
      `${at} is already in use (another pbridge train, serve or view?); choose another port, or --port 0 for any free one`,
    );
  }
  if (code === 'EACCES') {
    return new InvalidArgument('--port', `not allowed to listen on ${at}; ports below 1024 need privileges`);
  }
  if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') {
    return new InvalidArgument('--host', `${o.host} is not an address of this machine`);
  }
  return undefined;
}

/** Resolves on Ctrl-C or SIGTERM. */
function untilStopped(): { stopped: () => boolean; done: Promise<void> } {
  let stop = false;
  const done = new Promise<void>((resolve) => {
    const on = (): void => {
      stop = true;
      resolve();
    };
    process.once('SIGINT', on);
    process.once('SIGTERM', on);
  });
  return { stopped: () => stop, done };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function cmdServe(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      rate: { type: 'string' },
      ...RIG_SERVE_OPTIONS,
    },
  });
  const server = await startBridge({ ...bridgeOptions(values), rig: await rigServeOptions(values) });
  await untilStopped().done;
  await server.close();
}

export async function cmdView(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { port: { type: 'string' }, host: { type: 'string' }, rate: { type: 'string' } },
  });
  const path = positionals[0];
  if (!path) throw new InvalidArgument('PATH', 'view needs the path of an MJCF file');
  const mj = await loadMujoco();
  const model = modelFromFile(mj, path);
  const renderer = model.ncam > 0 ? new Renderer(mj, model) : undefined;
  const data = new mj.MjData(model);
  mj.mj_forward(model, data);
  const server = await startBridge(bridgeOptions(values));
  const hub = server.hub;
  hub.setScene(sceneFromModel(mj, model, { name: basename(path) }));
  const reader = new PoseReader(model.nbody);
  const cameras = namesOf(mj, model, 'camera').slice(0, 4);
  const stop = untilStopped();
  const timestep = model.opt.timestep;
  let wallStart = performance.now();
  let simStart = data.time;
  let resets = 0;
  while (!stop.stopped()) {
    // Real time: step until simulated time catches up with the wall clock, at most 50 ms of compute per tick
    // so a model slower than real time still shows (in slow motion) instead of freezing the server.
    const target = simStart + (performance.now() - wallStart) / 1000;
    const budgetEnd = performance.now() + 50;
    while (data.time < target && performance.now() < budgetEnd) mj.mj_step(model, data);
    if (data.time < target) {
      wallStart = performance.now();
      simStart = data.time;
    }
    if (!Number.isFinite(data.time) || !(data.qpos as Float64Array).every(Number.isFinite)) {
      // Like MuJoCo's viewer: an unstable simulation is reset rather than shown as NaN.
      mj.mj_resetData(model, data);
      mj.mj_forward(model, data);
      wallStart = performance.now();
      simStart = data.time;
      console.error(`simulation went non-finite; reset (${++resets})`);
    }
    hub.poses(0, reader.read(data).pos, reader.quat, data.time);
    for (const camera of cameras) {
      if (!renderer || !hub.thumbnailDue(0, camera)) continue;
      const frame = renderer.render(data, camera, THUMB_SIZE, THUMB_SIZE);
      const png = encodePng(frame.rgb, frame.width, frame.height);
      hub.thumbnail(0, camera, Math.round(data.time / timestep), {
        mime: 'image/png',
        width: THUMB_SIZE,
        height: THUMB_SIZE,
        data: png,
      });
    }
    await sleep(1000 / 60);
  }
  await server.close();
  data.delete();
}

export interface ServeRolloutOptions {
  task: TaskDefinition;
  policy: BuiltinPolicy;
  actionMode: ActionMode;
  /** Stop after this many episodes in total over all envs; undefined: until stopped. */
  episodes: number | undefined;
  seed: number;
  numEnvs: number;
  bridge: BridgeCliOptions;
}

interface EnvRun {
  env: ManipulationEnv;
  id: number;
  obs: Float32Array;
  action: Float32Array<ArrayBuffer>;
  episode: number;
  phi: number;
  ret: number;
  shapedRet: number;
}

/**
 * Rolls out in real time (one control step per control period of simulated time) and publishes everything the
 * viewer shows. Phi here is the task's privileged-state oracle progress, labelled as such: this command runs no
 * reward model; the trainer publishes its model's stored Phi through the same API.
 */
export async function serveRollout(o: ServeRolloutOptions): Promise<void> {
  const runs: EnvRun[] = [];
  for (let i = 0; i < o.numEnvs; i++) {
    const env = await makeEnv(o.task, { actionMode: o.actionMode });
    runs.push({
      env,
      id: i,
      obs: new Float32Array(env.obsDim),
      action: new Float32Array(env.actDim),
      episode: 0,
      phi: 0,
      ret: 0,
      shapedRet: 0,
    });
  }
  const first = runs[0]!.env;
  const server = await startBridge(o.bridge);
  const hub = server.hub;
  hub.setScene(
    sceneFromModel(first.mj, first.model, {
      name: o.task.name,
      instruction: o.task.instruction,
      envIds: runs.map((r) => r.id),
    }),
  );
  const reader = new PoseReader(first.model.nbody);
  const cameras = namesOf(first.mj, first.model, 'camera');
  const shaping = checkShapingConfig({ mode: 'potential', gamma: 0.99 });
  const source = first.oracleProgress() === undefined ? 'none' : 'oracle (privileged state)';
  const rng = new Rng(o.seed ^ 0xa5a5a5a5);
  let nextSeed = o.seed;
  let episodesDone = 0;
  let successes = 0;
  let totalSteps = 0;

  const startEpisode = (r: EnvRun): void => {
    r.env.resetInto(r.obs, 0, nextSeed++);
    r.phi = r.env.oracleProgress() ?? 0;
    r.ret = 0;
    r.shapedRet = 0;
    hub.progress(r.id, { episode: r.episode, step: 0, phi: r.phi, shaped: 0, sparse: 0 }, source);
  };
  for (const r of runs) startEpisode(r);

  const controlDt = first.frameSkip * first.model.opt.timestep;
  const stop = untilStopped();
  const t0 = performance.now();
  let ticks = 0;
  while (!stop.stopped() && (o.episodes === undefined || episodesDone < o.episodes)) {
    for (const r of runs) {
      const { env } = r;
      if (o.policy === 'expert') env.expertAction(r.action);
      else if (o.policy === 'random') env.actionSpace.sample(rng, r.action);
      else r.action.fill(0);
      const flags = env.stepInto(r.action, r.obs, 0);
      totalSteps++;
      const phiNext = env.oracleProgress() ?? 0;
      const shaped = shapedReward(shaping, flags.reward, r.phi, phiNext, flags.terminated, flags.truncated);
      r.phi = phiNext;
      r.ret += flags.reward;
      r.shapedRet += shaped;
      hub.progress(
        r.id,
        { episode: r.episode, step: env.episodeStep, phi: phiNext, shaped, sparse: flags.reward },
        source,
      );
      hub.poses(r.id, reader.read(env.data).pos, reader.quat, env.data.time);
      for (const camera of cameras) {
        if (!hub.thumbnailDue(r.id, camera)) continue;
        const frame = env.render(camera, THUMB_SIZE);
        const png = encodePng(frame.rgb, frame.width, frame.height);
        hub.thumbnail(r.id, camera, env.episodeStep, {
          mime: 'image/png',
          width: THUMB_SIZE,
          height: THUMB_SIZE,
          data: png,
        });
      }
      if (flags.terminated || flags.truncated) {
        hub.episode({
          env: r.id,
          episode: r.episode,
          return: r.ret,
          shapedReturn: r.shapedRet,
          length: env.episodeStep,
          success: flags.success,
          totalSteps,
        });
        episodesDone++;
        if (flags.success) successes++;
        r.episode++;
        if (o.episodes !== undefined && episodesDone >= o.episodes) break;
        startEpisode(r);
      }
    }
    ticks++;
    const ahead = ticks * controlDt * 1000 - (performance.now() - t0);
    // Always yield, so the server's tick and sockets run even when the simulation is behind real time.
    await sleep(Math.max(0, ahead));
  }
  console.log(
    `episodes: ${episodesDone}, success rate ${episodesDone ? ((100 * successes) / episodesDone).toFixed(1) : '0.0'}%`,
  );
  await server.close();
  for (const r of runs) r.env.close();
}
