/**
 * A client for the KServe v2 / Triton inference protocol over HTTP/REST with JSON tensors:
 *
 *   GET  /v2/health/ready                         server ready (200) or not
 *   GET  /v2/models/{name}[/versions/{v}]         metadata: inputs and outputs with name, datatype, shape (-1: any)
 *   POST /v2/models/{name}[/versions/{v}]/infer   {inputs: [{name, shape, datatype, data}], outputs: [{name}]}
 *
 * `data` travels flattened row-major, as JSON or, with `binary`, as raw bytes after the JSON header (the binary
 * tensor data extension: kserve-binary.ts). The same timeout, retry and concurrency options as the chat client.
 */
import { RemoteModelError } from '../../sim/errors.ts';
import { JsonHttpClient } from './json-http.ts';
import { encodeTensor, HEADER_LENGTH, splitBinaryAnswer } from './kserve-binary.ts';
import type { HttpClientOptions } from './options.ts';

export type KServeDatatype =
  | 'BOOL'
  | 'UINT8'
  | 'UINT16'
  | 'UINT32'
  | 'UINT64'
  | 'INT8'
  | 'INT16'
  | 'INT32'
  | 'INT64'
  | 'FP16'
  | 'FP32'
  | 'FP64'
  | 'BYTES';

/** A tensor's signature as model metadata lists it; -1 in `shape` is a dimension of any size. */
export interface KServeTensorSpec {
  name: string;
  datatype: string;
  shape: number[];
}

/** A tensor sent for inference: flattened row-major data, `shape` giving its layout. */
export interface KServeTensor {
  name: string;
  datatype: KServeDatatype;
  shape: number[];
  data: ArrayLike<number> | readonly (number | string | boolean)[];
}

export interface KServeModelMetadata {
  name: string;
  versions?: string[];
  platform?: string;
  inputs: KServeTensorSpec[];
  outputs: KServeTensorSpec[];
}

export interface KServeOutputTensor {
  name: string;
  datatype: string;
  shape: number[];
  /** Flattened row-major; entries are whatever the server sent (a NaN arrives as null or a string). */
  data: unknown[];
}

export interface KServeInferResponse {
  modelName: string;
  modelVersion?: string;
  id?: string;
  outputs: KServeOutputTensor[];
}

export interface KServeInferOptions {
  version?: string;
  /** Outputs to return; default all. */
  outputs?: string[];
  /** Request id echoed by the server. */
  id?: string;
  /**
   * Send inputs as raw bytes and ask for outputs the same way (Triton and KServe's binary tensor data
   * extension). An answer the server sends as plain JSON is read as well.
   */
  binary?: boolean;
}

function modelPath(name: string, version?: string): string {
  const base = `/v2/models/${encodeURIComponent(name)}`;
  return version === undefined ? base : `${base}/versions/${encodeURIComponent(version)}`;
}

function isShape(x: unknown): x is number[] {
  return Array.isArray(x) && x.every((d) => Number.isInteger(d));
}

function tensorSpecs(x: unknown, where: string, what: 'inputs' | 'outputs'): KServeTensorSpec[] {
  if (!Array.isArray(x))
    throw new RemoteModelError('bad_response', `${where}: metadata has no ${what} array`);
  return x.map((t: unknown, i) => {
    const s = t as Partial<KServeTensorSpec> | null;
    if (!s || typeof s.name !== 'string' || typeof s.datatype !== 'string' || !isShape(s.shape)) {
      throw new RemoteModelError(
        'bad_response',
        `${where}: ${what}[${i}] is not {name, datatype, shape}: ${JSON.stringify(t)?.slice(0, 200)}`,
      );
    }
    return { name: s.name, datatype: s.datatype, shape: s.shape };
  });
}

export class KServeClient {
  private readonly http: JsonHttpClient;

  constructor(options: HttpClientOptions) {
    this.http = new JsonHttpClient(options);
  }

  get baseUrl(): string {
    return this.http.options.baseUrl;
  }

  /** Whether the server says it is ready (HTTP 200); a server that cannot be reached rejects. Not retried. */
  async ready(): Promise<boolean> {
    try {
      await this.http.request('GET', '/v2/health/ready', undefined, { retries: 0 });
      return true;
    } catch (err) {
      if (err instanceof RemoteModelError && (err.kind === 'http' || err.kind === 'bad_response'))
        return false;
      throw err;
    }
  }

  async metadata(name: string, version?: string): Promise<KServeModelMetadata> {
    const path = modelPath(name, version);
    const where = `GET ${this.baseUrl}${path}`;
    const m = (await this.http.request('GET', path)) as Record<string, unknown> | undefined;
    if (!m || typeof m !== 'object')
      throw new RemoteModelError('bad_response', `${where}: metadata is not an object`);
    const out: KServeModelMetadata = {
      name: typeof m.name === 'string' ? m.name : name,
      inputs: tensorSpecs(m.inputs, where, 'inputs'),
      outputs: tensorSpecs(m.outputs, where, 'outputs'),
    };
    if (typeof m.platform === 'string') out.platform = m.platform;
    if (Array.isArray(m.versions)) out.versions = m.versions.map(String);
    return out;
  }

  async infer(
    name: string,
    inputs: readonly KServeTensor[],
    options: KServeInferOptions = {},
  ): Promise<KServeInferResponse> {
    const path = `${modelPath(name, options.version)}/infer`;
    const where = `POST ${this.baseUrl}${path}`;
    const r = (
      options.binary
        ? await this.inferBinary(path, where, inputs, options)
        : await this.http.request('POST', path, {
            inputs: inputs.map((t) => ({
              name: t.name,
              shape: t.shape,
              datatype: t.datatype,
              data: Array.from(t.data),
            })),
            ...(options.outputs ? { outputs: options.outputs.map((n) => ({ name: n })) } : {}),
            ...(options.id !== undefined ? { id: options.id } : {}),
          })
    ) as Record<string, unknown> | undefined;
    if (!r || typeof r !== 'object' || !Array.isArray(r.outputs)) {
      throw new RemoteModelError('bad_response', `${where}: answer has no outputs array`);
    }
    const outputs = r.outputs.map((t: unknown, i): KServeOutputTensor => {
      const o = t as Record<string, unknown> | null;
      if (!o || typeof o.name !== 'string' || !isShape(o.shape) || !Array.isArray(o.data)) {
        throw new RemoteModelError('bad_response', `${where}: outputs[${i}] is not {name, shape, data}`);
      }
      // The protocol allows data nested per dimension as well as flat.
      return { name: o.name, datatype: String(o.datatype), shape: o.shape, data: o.data.flat(Infinity) };
    });
    const res: KServeInferResponse = {
      modelName: typeof r.model_name === 'string' ? r.model_name : name,
      outputs,
    };
    if (typeof r.model_version === 'string') res.modelVersion = r.model_version;
    if (typeof r.id === 'string') res.id = r.id;
    return res;
  }

  private async inferBinary(
    path: string,
    where: string,
    inputs: readonly KServeTensor[],
    options: KServeInferOptions,
  ): Promise<unknown> {
    const raw = inputs.map(encodeTensor);
    const header: Record<string, unknown> = {
      inputs: inputs.map((t, i) => ({
        name: t.name,
        shape: t.shape,
        datatype: t.datatype,
        parameters: { binary_data_size: raw[i]!.length },
      })),
      ...(options.outputs
        ? { outputs: options.outputs.map((n) => ({ name: n, parameters: { binary_data: true } })) }
        : { parameters: { binary_data_output: true } }),
      ...(options.id !== undefined ? { id: options.id } : {}),
    };
    const head = Buffer.from(JSON.stringify(header));
    const answer = await this.http.requestRaw('POST', path, {
      bytes: Buffer.concat([head, ...raw]),
      headers: {
        'content-type': 'application/octet-stream',
        [HEADER_LENGTH]: String(head.length),
      },
    });
    const declared = answer.headers.get(HEADER_LENGTH);
    if (declared !== null) return splitBinaryAnswer(answer.bytes, Number(declared), where);
    try {
      return JSON.parse(answer.bytes.toString('utf8')) as unknown;
    } catch {
      throw new RemoteModelError('bad_response', `${where}: answer is neither JSON nor binary tensor data`);
    }
  }

  /** Aborts requests in flight; later calls reject with kind `closed`. */
  close(): void {
    this.http.close();
  }
}
