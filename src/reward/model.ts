/**
 * The one interface every progress reward model implements (ONNX, remote VLM over HTTP, the default model, the
 * privileged-state oracle). A model scores a batch of requests; each answer carries its own status, so one bad
 * frame or one unparsable answer never fails its neighbours, and a failure is never a progress of 0.
 */

/** An RGB uint8 image, row-major [height, width, 3], row 0 at the top (what src/render produces). */
export interface ProgressImage {
  width: number;
  height: number;
  rgb: Uint8Array;
}

/** Frames that anchor a judgement: the episode's first views, a goal image, a reference trajectory. */
export interface ProgressAnchors {
  /** The episode's first frame per camera. */
  start?: Record<string, ProgressImage>;
  /** An image of the goal state per camera, where the task has one. */
  goal?: Record<string, ProgressImage>;
  /** A reference (expert) trajectory, frame by frame, per camera. */
  reference?: Record<string, ProgressImage>[];
}

export interface ProgressRequest {
  /** The task's language instruction. */
  instruction: string;
  /** Current frames by camera name. */
  views: Record<string, ProgressImage>;
  anchors?: ProgressAnchors;
  /** Which env, episode and step this state is: the service caches answers by these. */
  envId: number;
  episodeId: number;
  step: number;
  /** Privileged progress from the simulator's state: read by the oracle backend only. */
  privileged?: { progress: number };
}

export type ProgressStatus = 'ok' | 'parse_error' | 'timeout' | 'error';

export interface ProgressResponse {
  /** Task progress in [0, 1] when status is `ok`; NaN otherwise (missing, never 0). */
  progress: number;
  status: ProgressStatus;
  /** Milliseconds from submission to answer (set by the service). */
  latencyMs: number;
  /** Which model produced the answer (name and version). */
  model: string;
  /** Per-step change in progress, where the model reports one (VLAC-style delta, GRM-style hop). */
  delta?: number;
  /** Probability that the task is done, where the model gives one. */
  done?: number;
  confidence?: number;
  /** The model's raw text answer (remote VLMs), for debugging parsers. */
  raw?: string;
  /** What went wrong, when status is not `ok`. */
  error?: string;
}

export interface ProgressModel {
  /** Name and version, e.g. `oracle@1` or `default@2026-11-21`. */
  readonly id: string;
  /** Largest batch the model accepts in one call (the service never sends more). */
  readonly maxBatch: number;
  /** Scores a batch; resolves with one response per request, in order. May reject: the service turns that into `error` answers. */
  predict(batch: readonly ProgressRequest[]): Promise<Omit<ProgressResponse, 'latencyMs'>[]>;
  close?(): Promise<void>;
}

/** A missing answer: NaN progress with the reason. */
export function missing(
  model: string,
  status: Exclude<ProgressStatus, 'ok'>,
  error: string,
): Omit<ProgressResponse, 'latencyMs'> {
  return { progress: NaN, status, model, error };
}
