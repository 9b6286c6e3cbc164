/**
 * The `generic` adapter: for any instruction-following VLM with no progress training. It shows the current views
 * (all of them, or the configured cameras, each labelled with its name) and asks for the task completion as a
 * percentage 0-100. Stateless: each state is judged alone, so answers are noisier than a pair-wise critic's but
 * never drift.
 */
import { InvalidArgument } from '../../sim/errors.ts';
import type { ProgressRequest } from '../model.ts';
import { failed, type AdapterAnswer, type Ask, type ProgressAdapter } from './adapter.ts';
import { findNumbers, stripReasoning } from './answer-text.ts';
import type { ChatContentPart, ChatMessage } from './chat-client.ts';
import { pngDataUrl } from './image-url.ts';

export interface GenericAdapterOptions {
  /** The cameras shown; default every view of the request. */
  cameras?: string[];
}

export function buildGenericPrompt(
  request: Pick<ProgressRequest, 'instruction' | 'views'>,
  cameras?: readonly string[],
): ChatMessage[] {
  const names = cameras && cameras.length > 0 ? cameras : Object.keys(request.views);
  const content: ChatContentPart[] = [
    {
      type: 'text',
      text:
        `A robot is doing this task: ${request.instruction}\n` +
        `Here ${names.length === 1 ? 'is the current camera view' : `are the current views of ${names.length} cameras`}.`,
    },
  ];
  for (const name of names) {
    const view = request.views[name];
    if (view === undefined) {
      throw new Error(
        `request has no view "${name}"; its views are: ${Object.keys(request.views).join(', ') || 'none'}`,
      );
    }
    content.push(
      { type: 'text', text: `${name}:` },
      { type: 'image_url', image_url: { url: pngDataUrl(view) } },
    );
  }
  content.push({
    type: 'text',
    text:
      'What percentage of the task is complete? 0% means not started, 100% means fully done. ' +
      'Answer with one number from 0 to 100 followed by %, for example 40%.',
  });
  return [{ role: 'user', content }];
}

/**
 * Completion in [0, 1] from an answer: the first number followed by %, else (when no number has a %) the first
 * bare number, read as a percentage; undefined when there is none or it lies outside [0, 100]. A bare `0.75` is
 * therefore 0.75%, as asked.
 */
export function parseGenericProgress(text: string): number | undefined {
  const numbers = findNumbers(stripReasoning(text));
  const pick = (numbers.find((n) => n.percent) ?? numbers[0])?.value;
  if (pick === undefined || !(pick >= 0 && pick <= 100)) return undefined;
  return pick / 100;
}

export class GenericAdapter implements ProgressAdapter {
  readonly name = 'generic';
  readonly requestsPerState = 1;
  private readonly cameras: string[] | undefined;

  constructor(options: GenericAdapterOptions = {}) {
    if (options.cameras !== undefined && options.cameras.length === 0) {
      throw new InvalidArgument('cameras', 'must name at least one camera when given');
    }
    this.cameras = options.cameras;
  }

  async score(req: ProgressRequest, ask: Ask): Promise<AdapterAnswer> {
    if (Object.keys(req.views).length === 0) return failed('error', 'request has no views');
    let messages: ChatMessage[];
    try {
      messages = buildGenericPrompt(req, this.cameras);
    } catch (err) {
      return failed('error', `cannot build the prompt: ${(err as Error).message}`);
    }
    const r = await ask(messages);
    if (!r.ok) return failed(r.status, r.error);
    const progress = parseGenericProgress(r.text);
    if (progress === undefined)
      return failed('parse_error', 'no percentage in [0, 100] in the answer', r.text);
    return { status: 'ok', progress, raw: r.text };
  }
}
