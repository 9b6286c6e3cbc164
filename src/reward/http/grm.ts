/**
 * The `grm` adapter: Robo-Dopamine GRM style. One prompt holds eight images: a reference start frame, a reference
 * end frame (the goal image, or a black frame when the task has none), three views BEFORE and the same three
 * views AFTER. The model answers a hop `<score>+NN%</score>`, H in [-1, 1]: a share of the distance that remained
 * from BEFORE to the end when positive, a share of the distance covered from the start to BEFORE when negative.
 * Applying a hop to a progress Phi:
 *
 *   hop(Phi, H) = Phi + H * (1 - Phi)   for H >= 0
 *               = Phi + H * Phi         for H <  0       (then clamped to [0, 1])
 *
 * Three estimates of the current progress, each one chat request, fused by their mean:
 *   - incremental: hop(Phi_prev, H(previous -> current)), Phi_prev the fused progress of the episode's previous
 *     state (0 before the first), so the anchored estimates also pull the chain back when it drifts;
 *   - start:       hop(0, H(start -> current)) = max(0, H), the hop from the episode's start frames;
 *   - goal:        hop(1, H(goal -> current)) = 1 + H for H <= 0, the hop from the goal back to now: a regress
 *     from the finished state measured against all the distance covered, so |H| is the share still to do.
 *     Asked only when the request has a goal image.
 * That is up to three chat requests per state: choose with `fuse` (e.g. `['incremental']` for one request).
 *
 * Estimates whose answer is missing are left out of the mean; a state with none answers NaN and leaves the
 * episode's Phi as it was. A BEFORE that is the same frames as AFTER (the first state of an episode without a
 * start anchor) is a hop of 0 without asking.
 */
import { InvalidArgument } from '../../sim/errors.ts';
import type { ProgressImage, ProgressRequest } from '../model.ts';
import {
  clamp01,
  EpisodeMemory,
  failed,
  pickCameras,
  type AdapterAnswer,
  type Ask,
  type ProgressAdapter,
} from './adapter.ts';
import { stripReasoning, wholeNumber } from './answer-text.ts';
import type { ChatContentPart, ChatMessage } from './chat-client.ts';
import { blankImage, pngDataUrl } from './image-url.ts';

export type GrmEstimate = 'incremental' | 'start' | 'goal';

export const GRM_ESTIMATES: readonly GrmEstimate[] = ['incremental', 'start', 'goal'];

/** The prompt's words around the images; replace them to match the prompt a fine-tuned model was trained on. */
export interface GrmPromptText {
  /** Before the reference images. */
  intro: (instruction: string) => string;
  /** After the last image: how to answer. */
  outro: (instruction: string) => string;
}

export const DEFAULT_GRM_PROMPT: GrmPromptText = {
  intro: (task) =>
    'You judge the progress of a robot on a task from camera images, strictly and impartially.\n' +
    `Task: ${task}\n` +
    'Two reference images anchor the scale: the task just starting, and the task fully completed.',
  outro: () =>
    '\nDoes the AFTER set of views come closer to completing the task than the BEFORE set? Place BEFORE and ' +
    'AFTER on the scale from the start reference to the end reference, then score the change as an integer ' +
    'percentage in [-100%, +100%]: an improvement as a share of what remained from BEFORE to the end, a ' +
    'regression as a share of the progress BEFORE had made since the start, 0% when unchanged or unclear. ' +
    'Use the wide views for the scene and object poses, the wrist views for grasp and contact.\n' +
    'Answer with one line only: <score>+NN%</score> or <score>-NN%</score> or <score>0%</score>',
};

export interface GrmImages {
  referenceStart: ProgressImage;
  /** The goal image, or a blank frame. */
  referenceEnd: ProgressImage;
  /** Three views, in the order of `cameras`. */
  before: readonly ProgressImage[];
  after: readonly ProgressImage[];
}

export interface GrmAdapterOptions {
  /** Up to three camera names for the BEFORE/AFTER views; default the request's first three views (repeated if fewer). */
  cameras?: string[];
  /** Which estimates to ask for and average; default all three. `goal` is skipped for requests without a goal image. */
  fuse?: GrmEstimate[];
  prompt?: GrmPromptText;
  /** Episodes whose state is kept (oldest forgotten first). Default 1024. */
  maxEpisodes?: number;
}

/** Applies hop H to progress Phi (formula in the module comment). */
export function applyHop(phi: number, hop: number): number {
  return clamp01(hop >= 0 ? phi + hop * (1 - phi) : phi + hop * phi);
}

export function buildGrmPrompt(
  instruction: string,
  images: GrmImages,
  cameras: readonly string[],
  text: GrmPromptText = DEFAULT_GRM_PROMPT,
): ChatMessage[] {
  if (images.before.length !== 3 || images.after.length !== 3 || cameras.length !== 3) {
    throw new Error(
      'a GRM prompt takes exactly three BEFORE views, three AFTER views and three camera names',
    );
  }
  const image = (img: ProgressImage): ChatContentPart => ({
    type: 'image_url',
    image_url: { url: pngDataUrl(img) },
  });
  const content: ChatContentPart[] = [
    { type: 'text', text: `${text.intro(instruction)}\nREFERENCE START (task just starting):` },
    image(images.referenceStart),
    { type: 'text', text: 'REFERENCE END (task fully completed):' },
    image(images.referenceEnd),
  ];
  for (const [label, views] of [
    ['BEFORE', images.before],
    ['AFTER', images.after],
  ] as const) {
    views.forEach((v, i) => {
      content.push({ type: 'text', text: `${i === 0 ? '\n' : ''}${label} ${cameras[i]} view:` }, image(v));
    });
  }
  content.push({ type: 'text', text: text.outro(instruction) });
  return [{ role: 'user', content }];
}

/**
 * The hop H in [-1, 1] from an answer: the last `<score>...</score>` (after any reasoning), else an answer that is
 * one bare percentage such as `+23%`; undefined when absent or outside [-100%, +100%]. Never a default of 0: a
 * missing hop is a missing answer.
 */
export function parseGrmHop(text: string): number | undefined {
  const body = stripReasoning(text);
  const tags = [...body.matchAll(/<score>([\s\S]*?)<\/score>/gi)];
  const inner = tags.length > 0 ? tags[tags.length - 1]![1]! : body;
  const value = wholeNumber(inner);
  if (value === undefined || !(Math.abs(value) <= 100)) return undefined;
  return value / 100;
}

/** The fused progress: the mean of the estimates that arrived; undefined when none did. */
export function fuseEstimates(estimates: readonly number[]): number | undefined {
  if (estimates.length === 0) return undefined;
  return clamp01(estimates.reduce((a, b) => a + b, 0) / estimates.length);
}

interface GrmEpisode {
  /** Start frames when the requests carry no start anchor: the first views seen. */
  start?: Record<string, ProgressImage>;
  previous?: Record<string, ProgressImage>;
  /** Fused Phi after the last submitted state. */
  phi: Promise<number>;
}

type EstimateResult =
  | { kind: GrmEstimate; hop: number; raw?: string }
  | {
      kind: GrmEstimate;
      hop?: undefined;
      status: 'parse_error' | 'timeout' | 'error';
      error: string;
      raw?: string;
    };

/** Views of `source` for `cameras`, falling back to its first camera's (then any) image where one is missing. */
function viewsOf(source: Record<string, ProgressImage>, cameras: readonly string[]): ProgressImage[] {
  const any = source[cameras[0]!] ?? Object.values(source)[0];
  if (any === undefined) throw new Error('an anchor has no images');
  return cameras.map((c) => source[c] ?? any);
}

function hasImages(r: Record<string, ProgressImage> | undefined): r is Record<string, ProgressImage> {
  return r !== undefined && Object.keys(r).length > 0;
}

export class GrmAdapter implements ProgressAdapter {
  readonly name = 'grm';
  readonly requestsPerState: number;
  private readonly cameras: string[] | undefined;
  private readonly fuse: GrmEstimate[];
  private readonly text: GrmPromptText;
  private readonly episodes: EpisodeMemory<GrmEpisode>;

  constructor(options: GrmAdapterOptions = {}) {
    const fuse = options.fuse ?? [...GRM_ESTIMATES];
    if (
      fuse.length === 0 ||
      fuse.some((f) => !GRM_ESTIMATES.includes(f)) ||
      new Set(fuse).size !== fuse.length
    ) {
      throw new InvalidArgument(
        'fuse',
        `must list distinct estimates among ${GRM_ESTIMATES.join(', ')}, got ${JSON.stringify(fuse)}`,
      );
    }
    if (options.cameras !== undefined && (options.cameras.length === 0 || options.cameras.length > 3)) {
      throw new InvalidArgument('cameras', `must name 1 to 3 cameras, got ${options.cameras.length}`);
    }
    this.fuse = fuse;
    this.requestsPerState = fuse.length;
    this.cameras = options.cameras;
    this.text = options.prompt ?? DEFAULT_GRM_PROMPT;
    this.episodes = new EpisodeMemory(() => ({ phi: Promise.resolve(0) }), options.maxEpisodes);
  }

  score(req: ProgressRequest, ask: Ask): Promise<AdapterAnswer> {
    let cameras: string[];
    try {
      cameras = pickCameras(req.views, 3, this.cameras);
    } catch (err) {
      return Promise.resolve(failed('error', (err as Error).message));
    }
    const episode = this.episodes.get(req);
    const anchorStart = hasImages(req.anchors?.start) ? req.anchors.start : undefined;
    episode.start ??= anchorStart ?? req.views;
    const start = anchorStart ?? episode.start;
    const previous = episode.previous ?? start;
    episode.previous = req.views;
    const phiBefore = episode.phi;
    const goal = hasImages(req.anchors?.goal) ? req.anchors.goal : undefined;
    const wanted = this.fuse.filter((f) => f !== 'goal' || goal !== undefined);
    if (wanted.length === 0) {
      return Promise.resolve(
        failed('error', 'fuse asks for the goal estimate only, and the request has no goal image'),
      );
    }

    let estimates: Promise<EstimateResult>[];
    try {
      const after = cameras.map((c) => req.views[c]!);
      const referenceStart = viewsOf(start, cameras)[0]!;
      const referenceEnd = goal ? viewsOf(goal, cameras)[0]! : blankImage(after[0]!.width, after[0]!.height);
      const beforeOf = { incremental: previous, start, goal: goal ?? {} };
      estimates = wanted.map((kind) => {
        const before = viewsOf(beforeOf[kind], cameras);
        if (before.every((img, i) => img === after[i])) return Promise.resolve({ kind, hop: 0 });
        const messages = buildGrmPrompt(
          req.instruction,
          { referenceStart, referenceEnd, before, after },
          cameras,
          this.text,
        );
        return ask(messages).then((r): EstimateResult => {
          if (!r.ok) return { kind, status: r.status, error: r.error };
          const hop = parseGrmHop(r.text);
          if (hop === undefined) {
            return {
              kind,
              status: 'parse_error',
              error: 'no <score>NN%</score> in [-100%, +100%]',
              raw: r.text,
            };
          }
          return { kind, hop, raw: r.text };
        });
      });
    } catch (err) {
      return Promise.resolve(failed('error', `cannot build the prompt: ${(err as Error).message}`));
    }

    const settled = Promise.all([phiBefore, Promise.all(estimates)]).then(([phi0, results]) => {
      const values: number[] = [];
      for (const r of results) {
        if (r.hop === undefined) continue;
        values.push(applyHop(r.kind === 'incremental' ? phi0 : r.kind === 'start' ? 0 : 1, r.hop));
      }
      const fused = fuseEstimates(values);
      const raws = results.filter((r) => r.raw !== undefined).map((r) => `${r.kind}: ${r.raw}`);
      const raw = raws.length > 0 ? raws.join('\n') : undefined;
      let answer: AdapterAnswer;
      if (fused === undefined) {
        const firstFailure = results.find((r) => r.hop === undefined);
        const status = firstFailure && 'status' in firstFailure ? firstFailure.status : 'error';
        const error = results
          .map((r) => ('error' in r ? `${r.kind}: ${r.error}` : ''))
          .filter(Boolean)
          .join('; ');
        answer = failed(status, error, raw);
      } else {
        answer = { status: 'ok', progress: fused };
        const incremental = results.find((r) => r.kind === 'incremental');
        if (incremental?.hop !== undefined) answer.delta = incremental.hop;
        if (raw !== undefined) answer.raw = raw;
      }
      return { phi: fused ?? phi0, answer };
    });
    episode.phi = settled.then((s) => s.phi);
    return settled.then((s) => s.answer);
  }
}
