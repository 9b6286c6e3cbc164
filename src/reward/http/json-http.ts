/**
 * JSON over HTTP with the failure handling a remote model needs: a concurrency limit, a timeout per attempt
 * (AbortController; the response body counts), retries with jittered exponential backoff for failures that may
 * pass (network errors, 429, 5xx) and none for those that will not (other 4xx, bodies that are not JSON), and a
 * cap on the response size. Every failure is a `RemoteModelError` whose `kind` tells a timeout from an HTTP
 * error. Uses the global fetch of Node 20.
 */
import { RemoteModelError } from '../../sim/errors.ts';
import { backoffDelay, retryAfterMs } from './backoff.ts';
import { ConcurrencyLimiter } from './limiter.ts';
import {
  resolveHttpClientOptions,
  type HttpClientOptions,
  type ResolvedHttpClientOptions,
} from './options.ts';

export interface JsonRequestOptions {
  /** Overrides the client's `retries` for this call (a health check should answer at once). */
  retries?: number;
}

/** A body sent as is with its own headers (content type and any protocol headers). */
export interface RawBody {
  bytes: Uint8Array;
  headers: Record<string, string>;
}

/** An answer's headers and bytes, for protocols whose bodies are not plain JSON. */
export interface RawAnswer {
  headers: Headers;
  bytes: Buffer;
}

type Attempt<T = unknown> =
  { ok: true; value: T } | { ok: false; error: RemoteModelError; retryable: boolean; retryAfterMs?: number };

/** How much of a bad body goes into an error message. */
const SNIPPET_CHARS = 300;

function snippet(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > SNIPPET_CHARS ? `${flat.slice(0, SNIPPET_CHARS)}...` : flat;
}

/** The server's own words from an error body: OpenAI `{error: {message}}`, KServe `{error: "..."}`, or the text. */
function errorDetail(body: string): string {
  try {
    const parsed: unknown = JSON.parse(body);
    if (parsed && typeof parsed === 'object' && 'error' in parsed) {
      const e = (parsed as { error: unknown }).error;
      if (typeof e === 'string') return snippet(e);
      if (e && typeof e === 'object' && typeof (e as { message?: unknown }).message === 'string') {
        return snippet((e as { message: string }).message);
      }
    }
  } catch {
    // Not JSON: the raw text is the best detail there is.
  }
  return snippet(body);
}

function describeNetworkError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = (err as { cause?: unknown }).cause;
  if (cause instanceof Error) {
    const code = (cause as { code?: unknown }).code;
    return `${err.message}: ${typeof code === 'string' ? `${code} ` : ''}${cause.message}`;
  }
  return err.message;
}

export class JsonHttpClient {
  readonly options: ResolvedHttpClientOptions;
  private readonly limiter: ConcurrencyLimiter;
  private readonly closing = new AbortController();

  constructor(options: HttpClientOptions) {
    this.options = resolveHttpClientOptions(options);
    this.limiter = new ConcurrencyLimiter(this.options.concurrency);
  }

  /** Requests running now (at most `concurrency`). */
  get inFlight(): number {
    return this.limiter.inFlight;
  }

  get closed(): boolean {
    return this.closing.signal.aborted;
  }

  /**
   * Sends `body` as JSON to `${baseUrl}${path}` and resolves with the parsed JSON answer (undefined for an empty
   * body, which some health endpoints send). Rejects with `RemoteModelError` once the retries are spent.
   */
  async request(
    method: 'GET' | 'POST',
    path: string,
    body?: unknown,
    options: JsonRequestOptions = {},
  ): Promise<unknown> {
    const payload: RawBody | undefined =
      body === undefined
        ? undefined
        : { bytes: Buffer.from(JSON.stringify(body)), headers: { 'content-type': 'application/json' } };
    return this.send(method, path, payload, { accept: 'application/json' }, parseJson, options);
  }

  /**
   * Sends `body` with its headers and resolves with the answer's headers and bytes, for the caller to decode;
   * timeouts, retries, the size cap and HTTP errors are handled as for `request`.
   */
  async requestRaw(
    method: 'GET' | 'POST',
    path: string,
    body: RawBody,
    options: JsonRequestOptions = {},
  ): Promise<RawAnswer> {
    return this.send(
      method,
      path,
      body,
      {},
      (bytes, headers) => ({ ok: true, value: { headers, bytes } }),
      options,
    );
  }

  private async send<T>(
    method: 'GET' | 'POST',
    path: string,
    payload: RawBody | undefined,
    headers: Record<string, string>,
    decode: Decode<T>,
    options: JsonRequestOptions,
  ): Promise<T> {
    const retries = options.retries ?? this.options.retries;
    for (let attempt = 0; ; attempt++) {
      if (this.closed) throw new RemoteModelError('closed', `${method} ${path}: the client is closed`);
      const outcome = await this.limiter.run(() => this.attempt(method, path, payload, headers, decode));
      if (outcome.ok) return outcome.value;
      if (!outcome.retryable || attempt >= retries) throw outcome.error;
      const { backoffMs, maxBackoffMs, random } = this.options;
      const delay = Math.min(
        maxBackoffMs,
        Math.max(backoffDelay(attempt, backoffMs, maxBackoffMs, random), outcome.retryAfterMs ?? 0),
      );
      await this.sleep(delay);
    }
  }

  /** Aborts the requests in flight and refuses new ones (both reject with kind `closed`). */
  close(): void {
    this.closing.abort();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.closed) return resolve();
      const done = (): void => {
        clearTimeout(timer);
        this.closing.signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.closing.signal.addEventListener('abort', done);
    });
  }

  private async attempt<T>(
    method: string,
    path: string,
    payload: RawBody | undefined,
    accept: Record<string, string>,
    decode: Decode<T>,
  ): Promise<Attempt<T>> {
    const { baseUrl, timeoutMs, apiKey, maxResponseBytes } = this.options;
    const url = `${baseUrl}${path}`;
    const what = `${method} ${url}`;
    // close() may have come while this attempt waited for a slot; an aborted signal fires no more events.
    if (this.closed) {
      return {
        ok: false,
        retryable: false,
        error: new RemoteModelError('closed', `${what}: the client is closed`),
      };
    }
    const abort = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      abort.abort();
    }, timeoutMs);
    const onClose = (): void => abort.abort();
    this.closing.signal.addEventListener('abort', onClose);
    const headers: Record<string, string> = { ...accept, ...payload?.headers };
    if (apiKey !== undefined) headers.authorization = `Bearer ${apiKey}`;
    try {
      const res = await fetch(url, { method, headers, body: payload?.bytes, signal: abort.signal });
      const bytes = await readBody(res, maxResponseBytes);
      if (bytes === undefined) {
        return {
          ok: false,
          retryable: false,
          error: new RemoteModelError(
            'bad_response',
            `${what}: response larger than ${maxResponseBytes} bytes`,
          ),
        };
      }
      if (!res.ok) {
        const status = res.status;
        const detail = errorDetail(bytes.toString('utf8'));
        const error = new RemoteModelError('http', `${what}: HTTP ${status}: ${detail}`, {
          httpStatus: status,
        });
        const retryable = status === 429 || status >= 500;
        const after = retryAfterMs(res.headers.get('retry-after'));
        return after === undefined
          ? { ok: false, retryable, error }
          : { ok: false, retryable, error, retryAfterMs: after };
      }
      return decode(bytes, res.headers, what);
    } catch (err) {
      if (timedOut) {
        return {
          ok: false,
          retryable: false,
          error: new RemoteModelError('timeout', `${what}: no answer within ${timeoutMs} ms`, { cause: err }),
        };
      }
      if (this.closed) {
        return {
          ok: false,
          retryable: false,
          error: new RemoteModelError('closed', `${what}: the client was closed`, { cause: err }),
        };
      }
      return {
        ok: false,
        retryable: true,
        error: new RemoteModelError('network', `${what}: ${describeNetworkError(err)}`, { cause: err }),
      };
    } finally {
      clearTimeout(timer);
      this.closing.signal.removeEventListener('abort', onClose);
    }
  }
}

/** Turns a successful answer into the caller's value, or a failure that is not retried. */
type Decode<T> = (bytes: Buffer, headers: Headers, what: string) => Attempt<T>;

function parseJson(bytes: Buffer, _headers: Headers, what: string): Attempt {
  const text = bytes.toString('utf8');
  if (text.trim() === '') return { ok: true, value: undefined };
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return {
      ok: false,
      retryable: false,
      error: new RemoteModelError('bad_response', `${what}: answer is not JSON: ${snippet(text)}`),
    };
  }
}

/** The body, or undefined when it exceeds `maxBytes` (the rest is not read). */
async function readBody(res: Response, maxBytes: number): Promise<Buffer | undefined> {
  const declared = Number(res.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > maxBytes) {
    await res.body?.cancel();
    return undefined;
  }
  if (!res.body) return Buffer.alloc(0);
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel();
      return undefined;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks);
}
