/**
 * The shared memory of a vector env: every per-step array lives in one SharedArrayBuffer that the main thread
 * and the workers view, so a step moves no observation or action through message passing.
 *
 * Control words per worker (Int32Array `control`, CONTROL_STRIDE entries each):
 *   [COMMAND] what to do, [REQUEST] bumped by the main thread to wake the worker,
 *   [DONE] set to the request number when the worker has finished it.
 */
export const CONTROL_STRIDE = 4;
export const COMMAND = 0;
export const REQUEST = 1;
export const DONE = 2;

export const enum Command {
  Reset = 1,
  Step = 2,
  Close = 3,
}

import type { EnvOptions } from '../env/env.ts';

export type AutoresetMode = 'next-step' | 'same-step' | 'disabled';
export const AUTORESET_MODES: readonly AutoresetMode[] = ['next-step', 'same-step', 'disabled'];

export interface SharedLayout {
  numEnvs: number;
  obsDim: number;
  actDim: number;
  workers: number;
  /** Bytes of camera images per sub-env (all image cameras, [size, size, 3] each); 0 without images. */
  imageBytes: number;
  /** Sub-envs 0..poseEnvs-1 publish their body poses (for live viewers); 0 for none. */
  poseEnvs: number;
  /** Bodies per model (world included), for the pose arrays. */
  nbody: number;
}

export interface SharedViews {
  control: Int32Array;
  obs: Float32Array;
  finalObs: Float32Array;
  actions: Float32Array;
  rewards: Float64Array;
  terminated: Uint8Array;
  truncated: Uint8Array;
  success: Uint8Array;
  /** 1 where this step ended an episode and (same-step mode) final_obs/final_info hold its last state. */
  final: Uint8Array;
  finalSuccess: Uint8Array;
  episodeStep: Int32Array;
  finalEpisodeStep: Int32Array;
  /** Per-env reset seed for the next Reset command; NaN means "no seed, continue the generator". */
  resetSeeds: Float64Array;
  /** Per-env 1 = reset this env in the next Reset command. */
  resetMask: Uint8Array;
  /** Privileged stage progress of the state returned (NaN where the task has none): the oracle ablation. */
  progress: Float64Array;
  /** Sum of the task's hand-designed dense terms for the step (0 at a reset): the dense-reward baseline. */
  dense: Float64Array;
  /** Image observations, [numEnvs, cameras, size, size, 3]. */
  images: Uint8Array;
  /** Body poses of the first `poseEnvs` sub-envs, [poseEnvs, nbody, 7]: x, y, z, then quaternion w, x, y, z. */
  poses: Float32Array;
}

function align8(n: number): number {
  return (n + 7) & ~7;
}

/** Byte offsets of each array in the one buffer (8-byte aligned so Float64 views are legal). */
export function sharedBytes(l: SharedLayout): { total: number; offsets: Record<keyof SharedViews, number> } {
  const n = l.numEnvs;
  const sizes: Record<keyof SharedViews, number> = {
    control: 4 * CONTROL_STRIDE * l.workers,
    obs: 4 * n * l.obsDim,
    finalObs: 4 * n * l.obsDim,
    actions: 4 * n * l.actDim,
    rewards: 8 * n,
    terminated: n,
    truncated: n,
    success: n,
    final: n,
    finalSuccess: n,
    episodeStep: 4 * n,
    finalEpisodeStep: 4 * n,
    resetSeeds: 8 * n,
    resetMask: n,
    progress: 8 * n,
    dense: 8 * n,
    images: n * l.imageBytes,
    poses: 4 * 7 * l.poseEnvs * l.nbody,
  };
  const offsets = {} as Record<keyof SharedViews, number>;
  let at = 0;
  for (const key of Object.keys(sizes) as (keyof SharedViews)[]) {
    offsets[key] = at;
    at = align8(at + sizes[key]);
  }
  return { total: at, offsets };
}

export function sharedViews(buffer: SharedArrayBuffer, l: SharedLayout): SharedViews {
  const { offsets: o } = sharedBytes(l);
  const n = l.numEnvs;
  return {
    control: new Int32Array(buffer, o.control, CONTROL_STRIDE * l.workers),
    obs: new Float32Array(buffer, o.obs, n * l.obsDim),
    finalObs: new Float32Array(buffer, o.finalObs, n * l.obsDim),
    actions: new Float32Array(buffer, o.actions, n * l.actDim),
    rewards: new Float64Array(buffer, o.rewards, n),
    terminated: new Uint8Array(buffer, o.terminated, n),
    truncated: new Uint8Array(buffer, o.truncated, n),
    success: new Uint8Array(buffer, o.success, n),
    final: new Uint8Array(buffer, o.final, n),
    finalSuccess: new Uint8Array(buffer, o.finalSuccess, n),
    episodeStep: new Int32Array(buffer, o.episodeStep, n),
    finalEpisodeStep: new Int32Array(buffer, o.finalEpisodeStep, n),
    resetSeeds: new Float64Array(buffer, o.resetSeeds, n),
    resetMask: new Uint8Array(buffer, o.resetMask, n),
    progress: new Float64Array(buffer, o.progress, n),
    dense: new Float64Array(buffer, o.dense, n),
    images: new Uint8Array(buffer, o.images, n * l.imageBytes),
    poses: new Float32Array(buffer, o.poses, 7 * l.poseEnvs * l.nbody),
  };
}

/** Envs [start, end) that worker w runs: contiguous, sizes differing by at most one. */
export function workerSlice(numEnvs: number, workers: number, w: number): [number, number] {
  const base = Math.floor(numEnvs / workers);
  const extra = numEnvs % workers;
  const start = w * base + Math.min(w, extra);
  return [start, start + base + (w < extra ? 1 : 0)];
}

/** What a worker is started with (workerData). */
export interface WorkerInit {
  /** Registry name or absolute path of a task module. */
  task: string;
  envOptions: EnvOptions;
  autoreset: AutoresetMode;
  /** Render image observations only at episode steps that are multiples of this (1: every step). */
  imageEvery: number;
  workerIndex: number;
  /** Global index of this worker's first env and one past its last. */
  start: number;
  end: number;
}

/** Sent by the main thread once the shared buffer exists (after every worker reported its dimensions). */
export interface AttachMessage {
  type: 'attach';
  buffer: SharedArrayBuffer;
  layout: SharedLayout;
}

/** Messages a worker posts to the main thread. */
export type WorkerMessage =
  | {
      type: 'ready';
      obsDim: number;
      actDim: number;
      obsNames: string[];
      episodeSteps: number;
      nbody: number;
      /** Image observation cameras and size, when the task declares or the options request them. */
      images?: { cameras: string[]; size: number };
    }
  | { type: 'error'; code: string; message: string; stack?: string };
