/**
 * The `vlac` adapter: VLAC-style pair-wise critic. Each state is judged against the one before it (the previous
 * frame of the primary camera, or the episode's start frame for the first), the model answers a signed
 * percentage delta c, and progress is rebuilt along the episode:
 *
 *   V_0 = 0,  V_{k+1} = V_k + (1 - V_k) * c   for c >= 0   (c is a share of what remained to do)
 *             V_{k+1} = V_k + V_k * c         for c <  0   (|c| is a share of what had been done)
 *
 * then clamped to [0, 1]. So +50% then +50% gives 0.5 then 0.75, and -50% from 0.75 gives 0.375.
 *
 * A step whose answer is missing (timeout, error, unparsable) leaves V unchanged and answers NaN; the next step
 * is still judged against that step's frame, so the missing step's change is lost, not double counted.
 */
import { InvalidArgument } from '../../sim/errors.ts';
import type { ProgressImage, ProgressRequest } from '../model.ts';
import {
  clamp01,
  EpisodeMemory,
  failed,
  type AdapterAnswer,
  type Ask,
  type ProgressAdapter,
} from './adapter.ts';
import { findNumbers, stripReasoning, wholeNumber } from './answer-text.ts';
import type { ChatMessage } from './chat-client.ts';
import { pngDataUrl } from './image-url.ts';

export interface VlacAdapterOptions {
  /** The camera judged; default the first view of each request. */
  camera?: string;
  /** Episodes whose state is kept (oldest forgotten first). Default 1024. */
  maxEpisodes?: number;
}

/** One step of the reconstruction above (c in [-1, 1]). */
export function applyVlacDelta(v: number, c: number): number {
  return clamp01(c >= 0 ? v + (1 - v) * c : v + v * c);
}

export function buildVlacPrompt(
  instruction: string,
  before: ProgressImage,
  after: ProgressImage,
): ChatMessage[] {
  return [
    {
      role: 'user',
      content: [
        {
          type: 'text',
          text:
            `Task: ${instruction}\n` +
            'Image 1 shows the robot earlier; image 2 shows it now. How much closer to completing the task is ' +
            'image 2 than image 1?\n' +
            'Image 1:',
        },
        { type: 'image_url', image_url: { url: pngDataUrl(before) } },
        { type: 'text', text: 'Image 2:' },
        { type: 'image_url', image_url: { url: pngDataUrl(after) } },
        {
          type: 'text',
          text:
            'Answer with one signed percentage between -100% and +100%: positive for progress, as a share of ' +
            'what remained to do; negative for regress, as a share of what had been done; 0% for no change. ' +
            'Examples: +12.5%, -3%, 0%.',
        },
      ],
    },
  ];
}

/**
 * The delta c in [-1, 1] from an answer: the first signed percentage, else the first percentage, else an answer
 * that is a bare number; undefined when there is none or it lies outside [-100%, +100%].
 */
export function parseVlacDelta(text: string): number | undefined {
  const body = stripReasoning(text);
  const numbers = findNumbers(body);
  const pick =
    numbers.find((n) => n.percent && n.signed)?.value ??
    numbers.find((n) => n.percent)?.value ??
    wholeNumber(body);
  if (pick === undefined || !(Math.abs(pick) <= 100)) return undefined;
  return pick / 100;
}

/** A step's answer: the delta, or why there is none. */
type Judged = { c: number; raw: string; answer?: undefined } | { c?: undefined; answer: AdapterAnswer };

interface VlacEpisode {
  /** The frame the next step is judged against. */
  previous?: ProgressImage;
  /** V after the last submitted step; resolves once that step's answer (and all before it) arrived. */
  value: Promise<number>;
}

export class VlacAdapter implements ProgressAdapter {
  readonly name = 'vlac';
  readonly requestsPerState = 1;
  private readonly camera: string | undefined;
  private readonly episodes: EpisodeMemory<VlacEpisode>;

  constructor(options: VlacAdapterOptions = {}) {
    if (options.camera !== undefined && (typeof options.camera !== 'string' || options.camera === '')) {
      throw new InvalidArgument('camera', `must be a camera name, got ${JSON.stringify(options.camera)}`);
    }
    this.camera = options.camera;
    this.episodes = new EpisodeMemory(() => ({ value: Promise.resolve(0) }), options.maxEpisodes);
  }

  score(req: ProgressRequest, ask: Ask): Promise<AdapterAnswer> {
    const camera = this.camera ?? Object.keys(req.views)[0];
    const current = camera === undefined ? undefined : req.views[camera];
    if (camera === undefined || current === undefined) {
      const views = Object.keys(req.views).join(', ') || 'none';
      return Promise.resolve(failed('error', `request has no view ${camera ?? ''}; its views are: ${views}`));
    }
    const episode = this.episodes.get(req);
    const previous = episode.previous ?? req.anchors?.start?.[camera];
    episode.previous = current;
    const before = episode.value;
    // The episode's first frame with nothing to compare it with: no progress yet, and no call to make.
    if (previous === undefined || previous === current) {
      return before.then((v) => ({ status: 'ok', progress: v, delta: 0 }));
    }
    let messages: ChatMessage[];
    try {
      messages = buildVlacPrompt(req.instruction, previous, current);
    } catch (err) {
      return Promise.resolve(failed('error', `cannot build the prompt: ${(err as Error).message}`));
    }
    const judged = ask(messages).then((r): Judged => {
      if (!r.ok) return { answer: failed(r.status, r.error) };
      const c = parseVlacDelta(r.text);
      if (c === undefined) {
        return {
          answer: failed('parse_error', 'no signed percentage in [-100%, +100%] in the answer', r.text),
        };
      }
      return { c, raw: r.text };
    });
    const after = Promise.all([before, judged]).then(([v, j]) =>
      j.c === undefined ? v : applyVlacDelta(v, j.c),
    );
    episode.value = after;
    return Promise.all([after, judged]).then(([v, j]) =>
      j.c === undefined ? j.answer : { status: 'ok', progress: v, delta: j.c, raw: j.raw },
    );
  }
}
