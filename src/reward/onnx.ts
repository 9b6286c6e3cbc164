/**
 * The `onnx` backend: a progress model in onnxruntime-node. What to feed it comes from the model itself: the
 * `progress_bridge` metadata entry (written by models/train_default.py; for models exported elsewhere, a sidecar
 * `<model>.onnx.json` with the same JSON) names the image input with its cameras, resolution, layout and
 * normalisation, the optional task input and the outputs. Everything is checked against the session's real
 * inputs and outputs at load, so a mismatched model fails there, naming the tensor, instead of at the first
 * batch. A session on another execution provider than the CPU is only used if it answers a probe batch as the CPU
 * does: onnxruntime-node's bundled WebGPU provider opens on an NVIDIA GPU and gives progress up to 0.12 away.
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';
import * as ort from 'onnxruntime-node';
import { FileNotFoundError, InvalidArgument, OnnxSignatureMismatch } from '../sim/errors.ts';
import { readOnnxMetadata } from '../onnx/reader.ts';
import { itemSize, writeViews, type ImageInputSpec } from './image-tensor.ts';
import { Rng } from '../env/rng.ts';
import {
  missing,
  type ProgressImage,
  type ProgressModel,
  type ProgressRequest,
  type ProgressResponse,
} from './model.ts';

export const PROGRESS_MODEL_FORMAT = 'progress-bridge.progress-model.v1';
/** The metadata key holding the model's input description. */
export const METADATA_KEY = 'progress_bridge';

/** The model's own description of its inputs and outputs. */
export interface ProgressModelSpec {
  format: typeof PROGRESS_MODEL_FORMAT;
  images: ImageInputSpec;
  /** A one-hot float input [B, instructions.length] selecting the task, for models trained on several tasks. */
  task?: { input: string; instructions: string[] };
  /** Output names: progress [B] or [B, 1] in [0, 1]; done probability likewise, where the model has one. */
  outputs: { progress: string; done?: string };
}

export interface OnnxProgressOptions {
  /** Execution providers in order of preference (`cuda`, `cpu`, ...). Default `['cpu']`. */
  executionProviders?: string[];
  /** Threads onnxruntime uses inside one operator. Default 1: the simulator's workers want the other cores. */
  intraOpThreads?: number;
  /** Largest batch per call. Default 64 (or the model's fixed batch dimension). */
  maxBatch?: number;
  /** Where the one warning about a missing execution provider goes. Default console.warn. */
  warn?: (message: string) => void;
  /** Name shown in answers' `model` field. Default the file's base name. */
  name?: string;
  /**
   * How far a non-CPU provider's outputs may be from the CPU provider's on a probe batch at load before that
   * provider is passed over (with the one warning) for the next. Default 1e-3, in [0, 1].
   */
  providerTolerance?: number;
}

export class OnnxProgressModel implements ProgressModel {
  readonly id: string;
  readonly maxBatch: number;
  /** The execution provider the session actually runs on. */
  readonly provider: string;
  private readonly instructionIndex = new Map<string, number>();

  private constructor(
    private readonly session: ort.InferenceSession,
    readonly spec: ProgressModelSpec,
    id: string,
    maxBatch: number,
    provider: string,
  ) {
    this.id = id;
    this.maxBatch = maxBatch;
    this.provider = provider;
    spec.task?.instructions.forEach((text, i) => this.instructionIndex.set(normaliseInstruction(text), i));
  }

  static async load(path: string, options: OnnxProgressOptions = {}): Promise<OnnxProgressModel> {
    if (!existsSync(path)) throw new FileNotFoundError(path, 'ONNX progress model');
    // Also rejects a file that is not an ONNX model before onnxruntime sees it, with a clearer message.
    const { metadata } = await readOnnxMetadata(path);
    const spec = readSpec(path, metadata);
    const tolerance = options.providerTolerance ?? 1e-3;
    if (!(tolerance >= 0 && tolerance <= 1)) {
      throw new InvalidArgument('providerTolerance', `must be a number in [0, 1], got ${tolerance}`);
    }
    const { session, provider } = await openSession(path, options, async (candidate, name) => {
      const cpu = await ort.InferenceSession.create(path, {
        executionProviders: ['cpu'],
        intraOpNumThreads: 1,
        interOpNumThreads: 1,
      });
      try {
        const { gap, output } = await sessionGap(candidate, cpu, spec, checkSignature(path, cpu, spec));
        return gap <= tolerance
          ? undefined
          : `execution provider "${name}" disagrees with cpu: ${output} differs by up to ${gap.toPrecision(2)} ` +
              `on a probe batch (providerTolerance ${tolerance})`;
      } finally {
        await cpu.release();
      }
    });
    const fixedBatch = checkSignature(path, session, spec);
    const maxBatch = fixedBatch ?? options.maxBatch ?? 64;
    if (!Number.isInteger(maxBatch) || maxBatch < 1 || maxBatch > 4096) {
      throw new InvalidArgument('maxBatch', `must be an integer in [1, 4096], got ${maxBatch}`);
    }
    const version = metadata.version ?? 'unversioned';
    const id = `${options.name ?? basename(path, '.onnx')}@${version} (onnx, ${provider})`;
    return new OnnxProgressModel(session, spec, id, maxBatch, provider);
  }

  async predict(batch: readonly ProgressRequest[]): Promise<Omit<ProgressResponse, 'latencyMs'>[]> {
    const answers: (Omit<ProgressResponse, 'latencyMs'> | undefined)[] = new Array(batch.length);
    // Requests that cannot be fed (a camera or an unknown instruction) are answered alone; the rest run together.
    const rows: number[] = [];
    const taskOf: number[] = [];
    for (let i = 0; i < batch.length; i++) {
      const req = batch[i]!;
      const lacking = this.spec.images.cameras.find((c) => !req.views[c]);
      if (lacking !== undefined) {
        answers[i] = missing(
          this.id,
          'error',
          `request has no "${lacking}" view; the model needs ${this.spec.images.cameras.join(', ')}`,
        );
        continue;
      }
      if (this.spec.task) {
        const t = this.instructionIndex.get(normaliseInstruction(req.instruction));
        if (t === undefined) {
          answers[i] = missing(
            this.id,
            'error',
            `instruction "${req.instruction}" is not one this model was trained on: ${this.spec.task.instructions.map((s) => `"${s}"`).join(', ')}`,
          );
          continue;
        }
        taskOf.push(t);
      }
      rows.push(i);
    }
    if (rows.length > 0) {
      const outputs = await this.run(
        rows.map((i) => batch[i]!),
        taskOf,
      );
      rows.forEach((i, r) => (answers[i] = outputs[r]));
    }
    return answers as Omit<ProgressResponse, 'latencyMs'>[];
  }

  private async run(
    reqs: ProgressRequest[],
    taskOf: number[],
  ): Promise<Omit<ProgressResponse, 'latencyMs'>[]> {
    const { outputs } = this.spec;
    const result = await this.session.run(
      feeds(
        this.spec,
        reqs.map((r) => r.views),
        taskOf,
      ),
    );
    const progress = result[outputs.progress]!.data as Float32Array;
    const done = outputs.done ? (result[outputs.done]!.data as Float32Array) : undefined;
    return reqs.map((_, b) => {
      const p = progress[b]!;
      if (!Number.isFinite(p)) return missing(this.id, 'error', `model output ${outputs.progress} is ${p}`);
      const d = done?.[b];
      return {
        progress: Math.min(1, Math.max(0, p)),
        status: 'ok' as const,
        model: this.id,
        ...(d !== undefined && Number.isFinite(d) ? { done: d } : {}),
      };
    });
  }

  private released = false;

  /** Frees the session; safe to call again (the reward service closes the model it owns, and so may its owner). */
  async close(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await this.session.release();
  }
}

/** The input tensors for a batch of views (all cameras present) and task indices. */
function feeds(
  spec: ProgressModelSpec,
  views: Record<string, ProgressImage>[],
  taskOf: number[],
): Record<string, ort.Tensor> {
  const { images, task } = spec;
  const n = views.length;
  const pixels = new Float32Array(n * itemSize(images));
  views.forEach((v, b) => writeViews(images, v, pixels, b));
  const dims =
    images.layout === 'NCHW'
      ? [n, images.cameras.length * 3, images.height, images.width]
      : [n, images.cameras.length, 3, images.height, images.width];
  const out: Record<string, ort.Tensor> = { [images.input]: new ort.Tensor('float32', pixels, dims) };
  if (task) {
    const k = task.instructions.length;
    const onehot = new Float32Array(n * k);
    taskOf.forEach((t, b) => (onehot[b * k + t] = 1));
    out[task.input] = new ort.Tensor('float32', onehot, [n, k]);
  }
  return out;
}

/** `n` sets of views, one per camera of `images`, of uniformly random pixels from `rng`. */
export function randomViews(images: ImageInputSpec, n: number, rng: Rng): Record<string, ProgressImage>[] {
  const { cameras, width, height } = images;
  return Array.from({ length: n }, () => {
    const v: Record<string, ProgressImage> = {};
    for (const c of cameras) {
      const rgb = new Uint8Array(width * height * 3);
      for (let i = 0; i < rgb.length; i++) rgb[i] = rng.int(256);
      v[c] = { width, height, rgb };
    }
    return v;
  });
}

/**
 * The largest absolute difference between two sessions of one model spec over its outputs (progress and done), on
 * a fixed batch of random pixels with the tasks in turn, and which output it was in. NaN on either side counts as
 * an infinite difference.
 */
export async function sessionGap(
  a: ort.InferenceSession,
  b: ort.InferenceSession,
  spec: ProgressModelSpec,
  batch = 8,
): Promise<{ gap: number; output: string }> {
  const views = randomViews(spec.images, batch, new Rng(0x70726f62));
  const tasks = spec.task?.instructions.length ?? 1;
  const input = feeds(
    spec,
    views,
    views.map((_, i) => i % tasks),
  );
  const [ra, rb] = [await a.run(input), await b.run(input)];
  let gap = 0;
  let output = spec.outputs.progress;
  for (const name of [spec.outputs.progress, spec.outputs.done]) {
    if (name === undefined) continue;
    const x = ra[name]!.data as Float32Array;
    const y = rb[name]!.data as Float32Array;
    for (let i = 0; i < x.length; i++) {
      const d = Math.abs(x[i]! - y[i]!);
      const g = Number.isNaN(d) ? Infinity : d;
      if (g > gap) [gap, output] = [g, name];
    }
  }
  return { gap, output };
}

function normaliseInstruction(text: string): string {
  return text.trim().toLowerCase().replace(/\s+/g, ' ');
}

/** The model's spec from its metadata, else from a sidecar JSON file; validated field by field. */
export function readSpec(path: string, metadata: Record<string, string>): ProgressModelSpec {
  let raw = metadata[METADATA_KEY];
  let source = `metadata "${METADATA_KEY}"`;
  if (raw === undefined && existsSync(`${path}.json`)) {
    raw = readFileSync(`${path}.json`, 'utf8');
    source = `${path}.json`;
  }
  if (raw === undefined) {
    throw new OnnxSignatureMismatch(
      path,
      METADATA_KEY,
      `the model has no "${METADATA_KEY}" metadata entry and there is no ${basename(path)}.json beside it: ` +
        'the runtime cannot know which cameras, resolution and normalisation it expects (see docs/reward.md)',
    );
  }
  let spec: unknown;
  try {
    spec = JSON.parse(raw);
  } catch (e) {
    throw new OnnxSignatureMismatch(path, METADATA_KEY, `${source} is not JSON: ${(e as Error).message}`);
  }
  return validateSpec(path, source, spec);
}

function validateSpec(path: string, source: string, x: unknown): ProgressModelSpec {
  const bad = (field: string, want: string): never => {
    throw new OnnxSignatureMismatch(path, METADATA_KEY, `${source}: ${field} must be ${want}`);
  };
  const obj = (v: unknown, field: string): Record<string, unknown> =>
    typeof v === 'object' && v !== null && !Array.isArray(v)
      ? (v as Record<string, unknown>)
      : bad(field, 'an object');
  const str = (v: unknown, field: string): string =>
    typeof v === 'string' && v.length > 0 ? v : bad(field, 'a non-empty string');
  const num = (v: unknown, field: string, ok: (n: number) => boolean, want: string): number =>
    typeof v === 'number' && ok(v) ? v : bad(field, want);
  const triple = (v: unknown, field: string, positive: boolean): [number, number, number] => {
    if (!Array.isArray(v) || v.length !== 3) return bad(field, 'an array of 3 numbers');
    return v.map((e, i) =>
      num(
        e,
        `${field}[${i}]`,
        (n) => Number.isFinite(n) && (!positive || n > 0),
        positive ? 'a positive number' : 'a finite number',
      ),
    ) as [number, number, number];
  };
  const root = obj(x, 'the spec');
  if (root.format !== PROGRESS_MODEL_FORMAT) bad('format', `"${PROGRESS_MODEL_FORMAT}"`);
  const im = obj(root.images, 'images');
  const cameras = im.cameras;
  if (!Array.isArray(cameras) || cameras.length === 0)
    bad('images.cameras', 'a non-empty array of camera names');
  const layout = im.layout;
  if (layout !== 'NCHW' && layout !== 'NVCHW') bad('images.layout', '"NCHW" or "NVCHW"');
  const images: ImageInputSpec = {
    input: str(im.input, 'images.input'),
    cameras: (cameras as unknown[]).map((c, i) => str(c, `images.cameras[${i}]`)),
    height: num(
      im.height,
      'images.height',
      (n) => Number.isInteger(n) && n >= 8 && n <= 1024,
      'an integer in [8, 1024]',
    ),
    width: num(
      im.width,
      'images.width',
      (n) => Number.isInteger(n) && n >= 8 && n <= 1024,
      'an integer in [8, 1024]',
    ),
    layout: layout as ImageInputSpec['layout'],
    scale: num(im.scale, 'images.scale', (n) => Number.isFinite(n) && n > 0, 'a positive number'),
    mean: triple(im.mean, 'images.mean', false),
    std: triple(im.std, 'images.std', true),
  };
  let task: ProgressModelSpec['task'];
  if (root.task !== undefined) {
    const t = obj(root.task, 'task');
    const instructions = t.instructions;
    if (!Array.isArray(instructions) || instructions.length === 0)
      bad('task.instructions', 'a non-empty array of strings');
    task = {
      input: str(t.input, 'task.input'),
      instructions: (instructions as unknown[]).map((s, i) => str(s, `task.instructions[${i}]`)),
    };
  }
  const out = obj(root.outputs, 'outputs');
  const outputs: ProgressModelSpec['outputs'] = { progress: str(out.progress, 'outputs.progress') };
  if (out.done !== undefined) outputs.done = str(out.done, 'outputs.done');
  return { format: PROGRESS_MODEL_FORMAT, images, ...(task ? { task } : {}), outputs };
}

/**
 * Opens the session on the first provider that works. onnxruntime-node lists `cuda` even where its libraries
 * were never installed, so the test is creating a session, not the provider list; a fallback warns once.
 */
async function openSession(
  path: string,
  options: OnnxProgressOptions,
  /** Says why a session on a non-CPU provider must not be used, or undefined to use it. */
  vet: (session: ort.InferenceSession, provider: string) => Promise<string | undefined>,
): Promise<{ session: ort.InferenceSession; provider: string }> {
  const providers = options.executionProviders ?? ['cpu'];
  if (providers.length === 0)
    throw new InvalidArgument('executionProviders', 'must name at least one provider');
  const threads = options.intraOpThreads ?? 1;
  if (!Number.isInteger(threads) || threads < 0 || threads > 256) {
    throw new InvalidArgument('intraOpThreads', `must be an integer in [0, 256], got ${threads}`);
  }
  const warn = options.warn ?? ((m: string) => console.warn(m));
  const failures: string[] = [];
  for (const provider of providers) {
    const logLevel = ort.env.logLevel;
    // A provider that fails to load is reported by the one warning below, not by onnxruntime's own error log.
    if (provider !== 'cpu') ort.env.logLevel = 'fatal';
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(path, {
        executionProviders: [provider],
        intraOpNumThreads: threads,
        interOpNumThreads: 1,
        graphOptimizationLevel: 'all',
        ...(provider === 'cpu' ? {} : { logSeverityLevel: 4 as const }),
      });
    } catch (e) {
      failures.push(`execution provider "${provider}" unavailable (${firstLine(e)})`);
      continue;
    } finally {
      ort.env.logLevel = logLevel;
    }
    if (provider !== 'cpu') {
      const reason = await vet(session, provider).catch(
        (e: unknown) => `execution provider "${provider}" could not score a probe batch (${firstLine(e)})`,
      );
      if (reason !== undefined) {
        await session.release();
        failures.push(reason);
        continue;
      }
    }
    if (failures.length > 0)
      warn(`progress model ${basename(path)}: ${failures.join('; ')}; running on ${provider}`);
    return { session, provider };
  }
  if (!providers.includes('cpu')) {
    const session = await ort.InferenceSession.create(path, {
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
    });
    warn(`progress model ${basename(path)}: ${failures.join('; ')}; falling back to cpu`);
    return { session, provider: 'cpu' };
  }
  throw new OnnxSignatureMismatch(
    path,
    'session',
    `onnxruntime could not open the model: ${failures.join('; ')}`,
  );
}

function firstLine(e: unknown): string {
  return String((e as Error)?.message ?? e)
    .split('\n')[0]!
    .slice(0, 200);
}

/**
 * Checks the session's real inputs and outputs against the spec. Returns the model's fixed batch size if its
 * batch dimension is not symbolic.
 */
function checkSignature(
  path: string,
  session: ort.InferenceSession,
  spec: ProgressModelSpec,
): number | undefined {
  const inputs = new Map(session.inputMetadata.map((m) => [m.name, m]));
  const outputs = new Map(session.outputMetadata.map((m) => [m.name, m]));
  const { images, task } = spec;
  const want = new Map<string, (number | 'B')[]>();
  want.set(
    images.input,
    images.layout === 'NCHW'
      ? ['B', images.cameras.length * 3, images.height, images.width]
      : ['B', images.cameras.length, 3, images.height, images.width],
  );
  if (task) want.set(task.input, ['B', task.instructions.length]);
  let fixedBatch: number | undefined;
  for (const [name, dims] of want) {
    const m = inputs.get(name);
    if (!m) {
      throw new OnnxSignatureMismatch(
        path,
        name,
        `the metadata names input "${name}" but the model's inputs are ${[...inputs.keys()].join(', ')}`,
      );
    }
    if (!m.isTensor || m.type !== 'float32') {
      throw new OnnxSignatureMismatch(
        path,
        name,
        `must be a float32 tensor, the model has ${m.isTensor ? m.type : 'a non-tensor'}`,
      );
    }
    const shape = m.shape;
    const expected = `[${dims.join(', ')}]`;
    if (shape.length !== dims.length) {
      throw new OnnxSignatureMismatch(
        path,
        name,
        `expected shape ${expected}, the model has [${shape.join(', ')}]`,
      );
    }
    dims.forEach((d, i) => {
      const got = shape[i];
      if (d === 'B') {
        if (typeof got === 'number' && got > 0) fixedBatch = Math.min(fixedBatch ?? got, got);
      } else if (typeof got === 'number' && got !== d) {
        throw new OnnxSignatureMismatch(
          path,
          name,
          `dimension ${i} is ${got}, the metadata says ${d} (expected shape ${expected})`,
        );
      }
    });
  }
  for (const name of inputs.keys()) {
    if (!want.has(name))
      throw new OnnxSignatureMismatch(
        path,
        name,
        `the model has an input "${name}" that its metadata does not describe`,
      );
  }
  for (const name of [spec.outputs.progress, spec.outputs.done]) {
    if (name !== undefined && !outputs.has(name)) {
      throw new OnnxSignatureMismatch(
        path,
        name,
        `the metadata names output "${name}" but the model's outputs are ${[...outputs.keys()].join(', ')}`,
      );
    }
  }
  return fixedBatch;
}
