/**
 * `KServeProgressModel`: a progress model served by Triton or KServe (an ONNX model on a GPU cluster, say). The
 * caller says how a batch becomes input tensors (`encode`) and which output holds progress ([B] or [B, 1]);
 * `create()` reads the model's metadata once and checks that output and, given a `probe` request, the tensors
 * `encode` produces, so a wrong name, datatype or shape fails at load with the tensor named rather than at the
 * first rollout. Every batch's tensors are checked again before they are sent.
 *
 * Output values: a number in [0, 1] is the progress; one within `tolerance` outside is clamped; anything else
 * (NaN, which JSON carries as null, a string, a value far outside) is `parse_error` with NaN progress, never 0.
 */
import { InvalidArgument, RemoteModelError } from '../../sim/errors.ts';
import { missing, type ProgressModel, type ProgressRequest, type ProgressResponse } from '../model.ts';
import type { KServeClient, KServeModelMetadata, KServeTensor, KServeTensorSpec } from './kserve.ts';
import { intOption, numberOption } from './options.ts';

export type KServeEncode = (batch: readonly ProgressRequest[]) => KServeTensor[];

export interface KServeProgressModelOptions {
  client: KServeClient;
  /** The model name on the server. */
  model: string;
  version?: string;
  encode: KServeEncode;
  /** The output tensor holding progress, shape [B] or [B, 1]. */
  output: string;
  /** A representative request: `create()` encodes it and checks the tensors against the metadata. */
  probe?: ProgressRequest;
  /** Largest batch per `predict`. Default 64, in [1, 65536]. */
  maxBatch?: number;
  /** How far outside [0, 1] an output may be and still be clamped rather than missing. Default 0.05, in [0, 1]. */
  tolerance?: number;
  /** The model id in answers; default `kserve:<model>[@version]`. */
  id?: string;
  /** Tensors as raw bytes instead of JSON numbers (KServeInferOptions.binary). */
  binary?: boolean;
}

function mismatch(message: string): RemoteModelError {
  return new RemoteModelError('mismatch', message);
}

/**
 * Checks encoded tensors against the model's inputs: the same set of names, equal datatypes, equal rank and
 * equal sizes where the metadata fixes one, and data as long as the shape says. Throws naming the tensor.
 */
export function checkInputs(
  model: string,
  tensors: readonly KServeTensor[],
  inputs: readonly KServeTensorSpec[],
): void {
  const byName = new Map(inputs.map((s) => [s.name, s]));
  const valid = inputs.map((s) => s.name).join(', ');
  const seen = new Set<string>();
  for (const t of tensors) {
    const spec = byName.get(t.name);
    if (!spec) throw mismatch(`model ${model} has no input "${t.name}"; its inputs are: ${valid}`);
    if (seen.has(t.name)) throw mismatch(`input "${t.name}" is encoded twice`);
    seen.add(t.name);
    if (t.datatype !== spec.datatype) {
      throw mismatch(`input "${t.name}": model ${model} takes ${spec.datatype}, encode gives ${t.datatype}`);
    }
    const fits =
      t.shape.length === spec.shape.length && spec.shape.every((d, i) => d < 0 || d === t.shape[i]);
    if (!fits) {
      throw mismatch(
        `input "${t.name}": model ${model} takes shape [${spec.shape.join(', ')}] (-1: any), encode gives [${t.shape.join(', ')}]`,
      );
    }
    const size = t.shape.reduce((a, b) => a * b, 1);
    if (t.data.length !== size) {
      throw mismatch(
        `input "${t.name}": shape [${t.shape.join(', ')}] holds ${size} values, data has ${t.data.length}`,
      );
    }
    // JSON has no NaN or Infinity: they would travel as null and fail on the server, far from the cause.
    if (t.datatype !== 'BYTES' && t.datatype !== 'BOOL') {
      for (let i = 0; i < t.data.length; i++) {
        const v = t.data[i];
        if (typeof v !== 'number' || !Number.isFinite(v)) {
          throw mismatch(`input "${t.name}": value ${i} is ${String(v)}, not a finite number`);
        }
      }
    }
  }
  const absent = inputs.filter((s) => !seen.has(s.name)).map((s) => s.name);
  if (absent.length > 0)
    throw mismatch(`model ${model} needs input(s) ${absent.join(', ')}, which encode does not give`);
}

export class KServeProgressModel implements ProgressModel {
  readonly id: string;
  readonly maxBatch: number;
  private readonly tolerance: number;

  private constructor(
    private readonly options: KServeProgressModelOptions,
    /** The server's metadata, as read at `create()`. */
    readonly metadata: KServeModelMetadata,
  ) {
    this.maxBatch = intOption('maxBatch', options.maxBatch, 64, 1, 65_536);
    this.tolerance = numberOption('tolerance', options.tolerance, 0.05, 0, 1);
    this.id =
      options.id ?? `kserve:${options.model}${options.version === undefined ? '' : `@${options.version}`}`;
  }

  /** Reads the metadata and checks the output (and the probe's inputs); rejects with `RemoteModelError`. */
  static async create(options: KServeProgressModelOptions): Promise<KServeProgressModel> {
    if (typeof options.model !== 'string' || options.model === '')
      throw new InvalidArgument('model', 'must name the served model');
    if (typeof options.output !== 'string' || options.output === '')
      throw new InvalidArgument('output', 'must name the progress output tensor');
    if (typeof options.encode !== 'function')
      throw new InvalidArgument('encode', 'must be a function (batch) => tensors');
    const metadata = await options.client.metadata(options.model, options.version);
    const out = metadata.outputs.find((o) => o.name === options.output);
    if (!out) {
      throw mismatch(
        `model ${options.model} has no output "${options.output}"; its outputs are: ${metadata.outputs.map((o) => o.name).join(', ')}`,
      );
    }
    const perItem =
      out.shape.length === 1 || (out.shape.length === 2 && (out.shape[1] === 1 || out.shape[1] === -1));
    if (!perItem) {
      throw mismatch(`output "${out.name}": shape [${out.shape.join(', ')}] is not [B] or [B, 1]`);
    }
    const model = new KServeProgressModel(options, metadata);
    if (options.probe) checkInputs(options.model, options.encode([options.probe]), metadata.inputs);
    return model;
  }

  async predict(batch: readonly ProgressRequest[]): Promise<Omit<ProgressResponse, 'latencyMs'>[]> {
    const { client, model, version, encode, output } = this.options;
    const all = (status: 'timeout' | 'error', error: string) =>
      batch.map(() => missing(this.id, status, error));
    let inputs: KServeTensor[];
    try {
      inputs = encode(batch);
      checkInputs(model, inputs, this.metadata.inputs);
    } catch (err) {
      return all('error', `cannot encode the batch: ${(err as Error).message}`);
    }
    let outputs;
    try {
      outputs = (
        await client.infer(model, inputs, {
          outputs: [output],
          ...(version === undefined ? {} : { version }),
          ...(this.options.binary ? { binary: true } : {}),
        })
      ).outputs;
    } catch (err) {
      const timeout = err instanceof RemoteModelError && err.kind === 'timeout';
      return all(timeout ? 'timeout' : 'error', (err as Error).message);
    }
    const t = outputs.find((o) => o.name === output);
    const n = batch.length;
    if (!t)
      return all('error', `answer has no output "${output}" (got: ${outputs.map((o) => o.name).join(', ')})`);
    const shapeOk =
      (t.shape.length === 1 && t.shape[0] === n) ||
      (t.shape.length === 2 && t.shape[0] === n && t.shape[1] === 1);
    if (!shapeOk || t.data.length !== n) {
      return all(
        'error',
        `output "${output}" has shape [${t.shape.join(', ')}] with ${t.data.length} values; a batch of ${n} needs [${n}] or [${n}, 1]`,
      );
    }
    return t.data.map((v) => {
      if (typeof v !== 'number' || !(v >= -this.tolerance && v <= 1 + this.tolerance)) {
        return missing(
          this.id,
          'parse_error',
          `output "${output}" value ${JSON.stringify(v)} is not a progress in [0, 1]`,
        );
      }
      return { progress: Math.min(1, Math.max(0, v)), status: 'ok' as const, model: this.id };
    });
  }

  async close(): Promise<void> {
    this.options.client.close();
  }
}
