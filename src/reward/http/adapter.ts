/**
 * What a model adapter is: it turns a `ProgressRequest` into chat prompts for one model family, reads the
 * answers and rebuilds a progress from them. Adapters never see HTTP: they get an `ask` function whose failures
 * come back as values, so a timeout or an HTTP error is an answer status, not an exception to forget.
 */
import type { ProgressRequest, ProgressStatus } from '../model.ts';
import type { ChatMessage } from './chat-client.ts';

/** One chat call's outcome: the answer text, or why there is none. */
export type AskResult =
  { ok: true; text: string } | { ok: false; status: 'timeout' | 'error'; error: string };

export type Ask = (messages: readonly ChatMessage[]) => Promise<AskResult>;

/** An adapter's answer for one request (the model id and latency are added by the caller). */
export interface AdapterAnswer {
  status: ProgressStatus;
  /** In [0, 1] when `ok`; NaN otherwise. */
  progress: number;
  delta?: number;
  raw?: string;
  error?: string;
}

export interface ProgressAdapter {
  /** `vlac`, `grm`, `generic`. */
  readonly name: string;
  /** The most chat requests one state may cost (GRM asks up to three). */
  readonly requestsPerState: number;
  /**
   * Scores one request. Called once per request in submission order, and an adapter that keeps per-episode
   * state reads and updates it before its first `await`, so a batch's requests of one episode chain correctly
   * even though their chat calls run in parallel. Never rejects.
   */
  score(req: ProgressRequest, ask: Ask): Promise<AdapterAnswer>;
}

/** A failed answer: NaN progress, never 0. */
export function failed(status: Exclude<ProgressStatus, 'ok'>, error: string, raw?: string): AdapterAnswer {
  return raw === undefined ? { status, progress: NaN, error } : { status, progress: NaN, error, raw };
}

export function clamp01(x: number): number {
  return Math.min(1, Math.max(0, x));
}

/**
 * Per-(env, episode) adapter state, created on first sight of an episode id. Bounded: the oldest episodes are
 * forgotten first, so a long run holds a few states per env, not one per episode ever seen.
 */
export class EpisodeMemory<S> {
  private readonly states = new Map<string, S>();

  constructor(
    private readonly create: () => S,
    readonly maxEpisodes = 1024,
  ) {}

  get(req: Pick<ProgressRequest, 'envId' | 'episodeId'>): S {
    const key = `${req.envId}:${req.episodeId}`;
    let state = this.states.get(key);
    if (state === undefined) {
      state = this.create();
      this.states.set(key, state);
      if (this.states.size > this.maxEpisodes) this.states.delete(this.states.keys().next().value!);
    }
    return state;
  }

  get size(): number {
    return this.states.size;
  }
}

/**
 * The cameras a prompt shows, `count` of them: the configured names, else the request's views in insertion order,
 * repeated from the first when there are fewer (a one-camera env fills a three-view prompt with that camera).
 * Throws (naming the views there are) when a configured camera is missing.
 */
export function pickCameras(
  views: Record<string, unknown>,
  count: number,
  configured?: readonly string[],
): string[] {
  const available = Object.keys(views);
  const names = configured && configured.length > 0 ? [...configured] : available.slice(0, count);
  if (names.length === 0) throw new Error('request has no views');
  for (const n of names) {
    if (!(n in views))
      throw new Error(`request has no view "${n}"; its views are: ${available.join(', ') || 'none'}`);
  }
  const picked = names.slice(0, count);
  for (let i = picked.length; i < count; i++) picked.push(picked[i % names.length]!);
  return picked;
}
