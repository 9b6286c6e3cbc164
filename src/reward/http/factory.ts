/**
 * `createHttpProgressModel(url, options)`: one entry point from a URL (a CLI flag, a config line) to a ready
 * `ProgressModel`.
 *
 *   http://gpu-box:8000?adapter=grm&model=Robo-Dopamine-GRM-3B    OpenAI-compatible chat server (vLLM)
 *   http://gpu-box:8000/v1?adapter=vlac&model=VLAC&timeoutMs=20000 the same; `/v1` and `/v1/chat/completions` are
 *                                                                  stripped from the path
 *   http://triton:8000/v2/models/progress_net?output=progress      KServe v2 / Triton (needs `encode` in options)
 *   http://triton:8000/v2/models/progress_net?output=progress&binary=true   the same, tensors as raw bytes
 *
 * Query parameters: adapter, model, version, output, binary, camera, cameras and fuse (comma-separated), timeoutMs,
 * retries, backoffMs, maxBackoffMs, concurrency, maxTokens, temperature, maxBatch. Options given in code win over
 * the URL's. API keys go in options (`apiKey`), never in URLs that end up in logs. Without a model name, the chat
 * server's `GET /v1/models` is asked, and its model is used when it serves exactly one.
 */
import { InvalidArgument } from '../../sim/errors.ts';
import type { ProgressModel, ProgressRequest } from '../model.ts';
import type { ProgressAdapter } from './adapter.ts';
import { ChatClient } from './chat-client.ts';
import { GenericAdapter } from './generic.ts';
import { GrmAdapter, type GrmEstimate, type GrmPromptText } from './grm.ts';
import { HttpProgressModel } from './http-progress-model.ts';
import { KServeClient } from './kserve.ts';
import { KServeProgressModel, type KServeEncode } from './kserve-progress-model.ts';
import type { HttpClientOptions } from './options.ts';
import { VlacAdapter } from './vlac.ts';

export const HTTP_ADAPTERS = ['vlac', 'grm', 'generic'] as const;
export type HttpAdapterName = (typeof HTTP_ADAPTERS)[number];

export interface CreateHttpProgressModelOptions extends Omit<HttpClientOptions, 'baseUrl'> {
  /** Chat servers: which prompt/answer convention the model follows. */
  adapter?: HttpAdapterName;
  /** The served model name (chat) or the model on the KServe server. */
  model?: string;
  maxTokens?: number;
  temperature?: number;
  /** vlac: the camera judged. */
  camera?: string;
  /** grm (up to three) and generic: the cameras shown. */
  cameras?: string[];
  /** grm: the estimates fused. */
  fuse?: GrmEstimate[];
  grmPrompt?: GrmPromptText;
  maxBatch?: number;
  id?: string;
  /** KServe: the model version. */
  version?: string;
  /** KServe: how a batch becomes input tensors (required for KServe URLs). */
  encode?: KServeEncode;
  /** KServe: the output holding progress. */
  output?: string;
  /** KServe: a request encoded at load to check the inputs against the metadata. */
  probe?: ProgressRequest;
  tolerance?: number;
  /** KServe: tensors as raw bytes (the binary tensor data extension) instead of JSON numbers. */
  binary?: boolean;
}

const QUERY_KEYS = [
  'adapter',
  'model',
  'version',
  'output',
  'binary',
  'camera',
  'cameras',
  'fuse',
  'timeoutMs',
  'retries',
  'backoffMs',
  'maxBackoffMs',
  'concurrency',
  'maxTokens',
  'temperature',
  'maxBatch',
] as const;
type QueryKey = (typeof QUERY_KEYS)[number];

const NUMERIC_KEYS = new Set<QueryKey>([
  'timeoutMs',
  'retries',
  'backoffMs',
  'maxBackoffMs',
  'concurrency',
  'maxTokens',
  'temperature',
  'maxBatch',
]);

/** Options from a URL's query, typed as CreateHttpProgressModelOptions fields (validated later by their owners). */
function queryOptions(params: URLSearchParams): CreateHttpProgressModelOptions {
  const out: Record<string, unknown> = {};
  for (const [key, value] of params) {
    if (!(QUERY_KEYS as readonly string[]).includes(key)) {
      throw new InvalidArgument(
        'url',
        `unknown query parameter "${key}"; valid ones: ${QUERY_KEYS.join(', ')}`,
      );
    }
    const k = key as QueryKey;
    if (NUMERIC_KEYS.has(k)) out[k] = value.trim() === '' ? NaN : Number(value);
    else if (k === 'binary') {
      if (value !== 'true' && value !== 'false') {
        throw new InvalidArgument('url', `binary must be true or false, got "${value}"`);
      }
      out[k] = value === 'true';
    } else if (k === 'cameras' || k === 'fuse')
      out[k] = value
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
    else out[k] = value;
  }
  return out as CreateHttpProgressModelOptions;
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function makeAdapter(o: CreateHttpProgressModelOptions): ProgressAdapter {
  switch (o.adapter) {
    case 'vlac':
      return new VlacAdapter(o.camera === undefined ? {} : { camera: o.camera });
    case 'grm':
      return new GrmAdapter(definedOnly({ cameras: o.cameras, fuse: o.fuse, prompt: o.grmPrompt }));
    case 'generic':
      return new GenericAdapter(definedOnly({ cameras: o.cameras }));
    default:
      throw new InvalidArgument(
        'adapter',
        `${o.adapter === undefined ? 'missing' : `unknown adapter "${String(o.adapter)}"`}; valid adapters: ${HTTP_ADAPTERS.join(', ')} (e.g. ?adapter=grm)`,
      );
  }
}

/** Builds an HTTP progress model from a URL and options (see the module comment for the URL forms). */
export async function createHttpProgressModel(
  url: string,
  options: CreateHttpProgressModelOptions = {},
): Promise<ProgressModel> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new InvalidArgument('url', `is not a URL: ${url}`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new InvalidArgument('url', `must use http: or https:, got ${parsed.protocol} in ${url}`);
  }
  if (parsed.username || parsed.password) {
    throw new InvalidArgument('url', 'must not carry credentials; pass apiKey in options');
  }
  const o: CreateHttpProgressModelOptions = { ...queryOptions(parsed.searchParams), ...definedOnly(options) };
  const http = definedOnly({
    apiKey: o.apiKey,
    concurrency: o.concurrency,
    timeoutMs: o.timeoutMs,
    retries: o.retries,
    backoffMs: o.backoffMs,
    maxBackoffMs: o.maxBackoffMs,
    maxResponseBytes: o.maxResponseBytes,
    random: o.random,
  });

  const kserve = /^(.*?)\/v2\/models\/([^/]+)(?:\/versions\/([^/]+))?(?:\/infer)?\/?$/.exec(parsed.pathname);
  if (kserve) {
    if (o.encode === undefined) {
      throw new InvalidArgument('encode', 'a KServe URL needs options.encode, (batch) => input tensors');
    }
    if (o.output === undefined)
      throw new InvalidArgument('output', 'a KServe URL needs ?output=NAME or options.output');
    const client = new KServeClient({ baseUrl: `${parsed.origin}${kserve[1]}`, ...http });
    const version = o.version ?? (kserve[3] === undefined ? undefined : decodeURIComponent(kserve[3]));
    return KServeProgressModel.create(
      definedOnly({
        client,
        model: options.model ?? decodeURIComponent(kserve[2]!),
        version,
        encode: o.encode,
        output: o.output,
        probe: o.probe,
        maxBatch: o.maxBatch,
        tolerance: o.tolerance,
        id: o.id,
        binary: o.binary,
      }) as Parameters<typeof KServeProgressModel.create>[0],
    );
  }

  const adapter = makeAdapter(o);
  const baseUrl = `${parsed.origin}${parsed.pathname.replace(/\/v1(\/chat\/completions)?\/?$/, '')}`;
  let model = o.model;
  if (model === undefined) {
    const probe = new ChatClient({ baseUrl, ...http, model: 'unknown' });
    const served = await probe.listModels().finally(() => probe.close());
    if (served.length !== 1) {
      throw new InvalidArgument(
        'model',
        `missing, and ${baseUrl} serves ${served.length === 0 ? 'no models' : `several: ${served.join(', ')}`}; add ?model=NAME`,
      );
    }
    model = served[0]!;
  }
  const client = new ChatClient(
    definedOnly({
      baseUrl,
      ...http,
      model,
      maxTokens: o.maxTokens,
      temperature: o.temperature,
    }) as ConstructorParameters<typeof ChatClient>[0],
  );
  return new HttpProgressModel(client, adapter, definedOnly({ maxBatch: o.maxBatch, id: o.id }));
}
