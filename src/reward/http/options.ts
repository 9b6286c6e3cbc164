/**
 * Options shared by the HTTP clients (OpenAI-compatible chat, KServe v2): where the server is, how many requests
 * may be in flight, how long one attempt may take and how failed attempts are retried. Validated once, with
 * errors that name the field and its limit.
 */
import { InvalidArgument } from '../../sim/errors.ts';

export interface HttpClientOptions {
  /** Server root, e.g. `http://127.0.0.1:8000`; protocol paths (`/v1/...`, `/v2/...`) are appended to it. */
  baseUrl: string;
  /** Sent as `Authorization: Bearer <apiKey>` when set. */
  apiKey?: string;
  /** Requests in flight at once; further calls wait for a free slot. Default 8, in [1, 1024]. */
  concurrency?: number;
  /** Milliseconds one attempt may take, response body included, before it is aborted. Default 60000, in [1, 3600000]. */
  timeoutMs?: number;
  /** Extra attempts after a network error, HTTP 429 or HTTP 5xx (never after another 4xx or a timeout). Default 2, in [0, 10]. */
  retries?: number;
  /** Backoff before the first retry in ms, doubled for each further retry, then jittered. Default 250, in [0, 60000]. */
  backoffMs?: number;
  /** Cap on one backoff in ms, a server's `Retry-After` included. Default 10000, in [0, 600000]. */
  maxBackoffMs?: number;
  /** Largest response body accepted, in bytes. Default 16 MiB, in [1024, 1 GiB]. */
  maxResponseBytes?: number;
  /** Jitter source in [0, 1). Default `Math.random`; pass a seeded one for a reproducible retry schedule. */
  random?: () => number;
}

export type ResolvedHttpClientOptions = Required<Omit<HttpClientOptions, 'apiKey'>> & { apiKey?: string };

/** An integer option in [min, max], or its default when absent. */
export function intOption(
  field: string,
  value: number | undefined,
  fallback: number,
  min: number,
  max: number,
): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new InvalidArgument(field, `must be an integer in [${min}, ${max}], got ${String(v)}`);
  }
  return v;
}

/** A finite number option in [min, max], or its default when absent. */
export function numberOption(
  field: string,
  value: number | undefined,
  fallback: number,
  min: number,
  max: number,
): number {
  const v = value ?? fallback;
  if (typeof v !== 'number' || !(v >= min && v <= max)) {
    throw new InvalidArgument(field, `must be a number in [${min}, ${max}], got ${String(v)}`);
  }
  return v;
}

/** An http(s) URL without a trailing slash, so that `${base}/v1/...` never doubles one. */
export function normaliseBaseUrl(field: string, value: unknown): string {
  if (typeof value !== 'string' || value === '') {
    throw new InvalidArgument(
      field,
      `must be an http(s) URL such as http://127.0.0.1:8000, got ${String(value)}`,
    );
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgument(field, `is not a URL: ${value}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new InvalidArgument(field, `must use http: or https:, got ${url.protocol} in ${value}`);
  }
  if (url.search || url.hash) {
    throw new InvalidArgument(field, `must not carry a query or fragment, got ${value}`);
  }
  return `${url.origin}${url.pathname}`.replace(/\/+$/, '');
}

export function resolveHttpClientOptions(options: HttpClientOptions): ResolvedHttpClientOptions {
  if (options === null || typeof options !== 'object') {
    throw new InvalidArgument('options', 'must be an object with at least baseUrl');
  }
  if (options.apiKey !== undefined && (typeof options.apiKey !== 'string' || options.apiKey === '')) {
    throw new InvalidArgument('apiKey', 'must be a non-empty string when given');
  }
  if (options.random !== undefined && typeof options.random !== 'function') {
    throw new InvalidArgument('random', 'must be a function returning a number in [0, 1)');
  }
  const resolved: ResolvedHttpClientOptions = {
    baseUrl: normaliseBaseUrl('baseUrl', options.baseUrl),
    concurrency: intOption('concurrency', options.concurrency, 8, 1, 1024),
    timeoutMs: intOption('timeoutMs', options.timeoutMs, 60_000, 1, 3_600_000),
    retries: intOption('retries', options.retries, 2, 0, 10),
    backoffMs: intOption('backoffMs', options.backoffMs, 250, 0, 60_000),
    maxBackoffMs: intOption('maxBackoffMs', options.maxBackoffMs, 10_000, 0, 600_000),
    maxResponseBytes: intOption('maxResponseBytes', options.maxResponseBytes, 16 << 20, 1024, 1 << 30),
    random: options.random ?? Math.random,
  };
  if (options.apiKey !== undefined) resolved.apiKey = options.apiKey;
  return resolved;
}
