/**
 * `HttpProgressModel`: a `ProgressModel` backed by a VLM behind an OpenAI-compatible chat server, a `ChatClient`
 * for the wire and a `ProgressAdapter` for the model family's prompts and answers. A batch's states are asked in
 * parallel, bounded by the client's `concurrency`; each answer carries its own status:
 *
 *   ok           the answer parsed; progress in [0, 1]
 *   parse_error  the server answered, but not with a number the adapter can read (progress NaN, raw kept)
 *   timeout      no answer within the client's `timeoutMs` (not retried)
 *   error        HTTP error after the retries, connection failure, a body that is not chat-completions JSON,
 *                a request the adapter cannot turn into a prompt
 */
import { RemoteModelError } from '../../sim/errors.ts';
import type { ProgressModel, ProgressRequest, ProgressResponse } from '../model.ts';
import type { AdapterAnswer, Ask, ProgressAdapter } from './adapter.ts';
import type { ChatClient } from './chat-client.ts';
import { intOption } from './options.ts';

export interface HttpProgressModelOptions {
  /** Largest batch per `predict` (the reward service never sends more). Default 64, in [1, 4096]. */
  maxBatch?: number;
  /** The model id in answers; default `http-<adapter>:<served model name>`. */
  id?: string;
}

export class HttpProgressModel implements ProgressModel {
  readonly id: string;
  readonly maxBatch: number;
  private readonly ask: Ask;

  constructor(
    readonly client: ChatClient,
    readonly adapter: ProgressAdapter,
    options: HttpProgressModelOptions = {},
  ) {
    this.id = options.id ?? `http-${adapter.name}:${client.model}`;
    this.maxBatch = intOption('maxBatch', options.maxBatch, 64, 1, 4096);
    this.ask = (messages) =>
      client.complete(messages).then(
        (c) => ({ ok: true, text: c.text }),
        (err: unknown) => ({
          ok: false,
          status: err instanceof RemoteModelError && err.kind === 'timeout' ? 'timeout' : 'error',
          error: err instanceof Error ? err.message : String(err),
        }),
      );
  }

  predict(batch: readonly ProgressRequest[]): Promise<Omit<ProgressResponse, 'latencyMs'>[]> {
    // map() calls score() for every request before any chat call returns: adapters rely on that order.
    return Promise.all(
      batch.map((req) =>
        this.adapter.score(req, this.ask).then(
          (a) => this.response(a),
          (err: unknown) => this.response({ status: 'error', progress: NaN, error: String(err) }),
        ),
      ),
    );
  }

  async close(): Promise<void> {
    this.client.close();
  }

  private response(a: AdapterAnswer): Omit<ProgressResponse, 'latencyMs'> {
    return { ...a, progress: a.status === 'ok' ? a.progress : NaN, model: this.id };
  }
}
