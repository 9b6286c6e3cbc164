/**
 * A client for the OpenAI-compatible chat completions API (`POST /v1/chat/completions`), the way vLLM, SGLang and
 * most VLM servers take images: content parts `{type: 'image_url', image_url: {url: 'data:image/png;base64,...'}}`
 * beside `{type: 'text', text}`. Sampling is greedy by default (temperature 0) so that a state scores the same
 * each time it is asked.
 */
import { InvalidArgument, RemoteModelError } from '../../sim/errors.ts';
import { JsonHttpClient } from './json-http.ts';
import { intOption, numberOption, type HttpClientOptions } from './options.ts';

export type ChatContentPart =
  { type: 'text'; text: string } | { type: 'image_url'; image_url: { url: string } };

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string | ChatContentPart[];
}

export interface ChatClientOptions extends HttpClientOptions {
  /** The served model name (vLLM: `--served-model-name`, or the model path it was started with). */
  model: string;
  /** Most tokens the server may generate per answer. Default 256, in [1, 65536]. */
  maxTokens?: number;
  /** Sampling temperature. Default 0 (greedy), in [0, 2]. */
  temperature?: number;
}

export interface ChatCompletion {
  /** The first choice's message text ('' when the server sent none). */
  text: string;
  /** Why generation stopped (`stop`, `length`, ...), where the server says. */
  finishReason?: string;
}

function textOf(content: unknown): string | undefined {
  if (typeof content === 'string') return content;
  if (content === null) return '';
  // Some servers answer with content parts, as requests send them.
  if (Array.isArray(content)) {
    return content
      .map((p: unknown) =>
        p && typeof p === 'object' && typeof (p as { text?: unknown }).text === 'string'
          ? (p as { text: string }).text
          : '',
      )
      .join('');
  }
  return undefined;
}

export class ChatClient {
  readonly model: string;
  readonly maxTokens: number;
  readonly temperature: number;
  private readonly http: JsonHttpClient;

  constructor(options: ChatClientOptions) {
    this.http = new JsonHttpClient(options);
    if (typeof options.model !== 'string' || options.model.trim() === '') {
      throw new InvalidArgument(
        'model',
        'must name the served model (e.g. the --served-model-name given to vllm serve)',
      );
    }
    this.model = options.model;
    this.maxTokens = intOption('maxTokens', options.maxTokens, 256, 1, 65_536);
    this.temperature = numberOption('temperature', options.temperature, 0, 0, 2);
  }

  get baseUrl(): string {
    return this.http.options.baseUrl;
  }

  /** Requests running now (at most the `concurrency` option). */
  get inFlight(): number {
    return this.http.inFlight;
  }

  /** One completion; rejects with `RemoteModelError` (kind `timeout`, `http`, `network`, `bad_response`, `closed`). */
  async complete(messages: readonly ChatMessage[]): Promise<ChatCompletion> {
    const answer = await this.http.request('POST', '/v1/chat/completions', {
      model: this.model,
      messages,
      temperature: this.temperature,
      max_tokens: this.maxTokens,
      stream: false,
    });
    const choice: unknown = (answer as { choices?: unknown[] } | undefined)?.choices?.[0];
    const message: unknown = (choice as { message?: unknown } | undefined)?.message;
    const text =
      message && typeof message === 'object' ? textOf((message as { content?: unknown }).content) : undefined;
    if (text === undefined) {
      throw new RemoteModelError(
        'bad_response',
        `POST ${this.baseUrl}/v1/chat/completions: answer has no choices[0].message.content: ${JSON.stringify(answer)?.slice(0, 300)}`,
      );
    }
    const reason = (choice as { finish_reason?: unknown }).finish_reason;
    return typeof reason === 'string' ? { text, finishReason: reason } : { text };
  }

  /** The model names the server serves (`GET /v1/models`). */
  async listModels(): Promise<string[]> {
    const answer = await this.http.request('GET', '/v1/models');
    const data: unknown = (answer as { data?: unknown } | undefined)?.data;
    if (!Array.isArray(data)) {
      throw new RemoteModelError('bad_response', `GET ${this.baseUrl}/v1/models: answer has no data array`);
    }
    return data
      .map((m: unknown) => (m && typeof m === 'object' ? (m as { id?: unknown }).id : undefined))
      .filter((id): id is string => typeof id === 'string');
  }

  /** Aborts requests in flight; later calls reject with kind `closed`. */
  close(): void {
    this.http.close();
  }
}
