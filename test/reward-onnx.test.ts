/**
 * The `onnx` progress backend against real onnxruntime sessions of small models built here, whose outputs are
 * simple enough to work out by hand: progress is the mean of the first camera's normalised pixels, `done` is the
 * task one-hot times [0.25, 0.75]. So a right answer proves the preprocessing (scale, mean, std, camera order,
 * resizing) and the instruction routing, and a wrong layout would show as a wrong number. The check that keeps a
 * non-CPU provider out when it answers differently from the CPU is measured on two CPU sessions of models whose
 * progress differs by a known constant.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GraphBuilder } from '../src/onnx/builder.ts';
import type { ProgressImage, ProgressRequest } from '../src/reward/model.ts';
import * as ort from 'onnxruntime-node';
import {
  OnnxProgressModel,
  PROGRESS_MODEL_FORMAT,
  sessionGap,
  type ProgressModelSpec,
} from '../src/reward/onnx.ts';
import { InvalidArgument, OnnxSignatureMismatch } from '../src/sim/errors.ts';

const dir = mkdtempSync(join(tmpdir(), 'pb-onnx-progress-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SIZE = 8;
const INSTRUCTIONS = ['push the cube', 'open the drawer'];

function spec(over: Partial<ProgressModelSpec['images']> = {}): ProgressModelSpec {
  return {
    format: PROGRESS_MODEL_FORMAT,
    images: {
      input: 'images',
      cameras: ['front', 'wrist'],
      height: SIZE,
      width: SIZE,
      layout: 'NCHW',
      scale: 1 / 255,
      mean: [0.5, 0.5, 0.5],
      std: [0.25, 0.25, 0.25],
      ...over,
    },
    task: { input: 'task', instructions: INSTRUCTIONS },
    outputs: { progress: 'progress', done: 'done' },
  };
}

interface BuildOptions {
  metadata?: ProgressModelSpec | string | null;
  modelSize?: number;
  extraInput?: boolean;
  /** Progress = sqrt(mean): NaN where the mean is negative. */
  sqrt?: boolean;
  /** Progress = mean + offset. */
  offset?: number;
}

function buildModel(name: string, o: BuildOptions = {}): string {
  const s = o.modelSize ?? SIZE;
  const g = new GraphBuilder(name);
  const images = g.addInput('images', 'float32', ['B', 6, s, s]);
  const task = g.addInput('task', 'float32', ['B', 2]);
  if (o.extraInput) g.addInput('depth', 'float32', ['B', 1, s, s]);
  const starts = g.addInt64Initializer('starts', [0], [1]);
  const ends = g.addInt64Initializer('ends', [3], [1]);
  const axes = g.addInt64Initializer('axes', [1], [1]);
  const [first] = g.addNode('Slice', [images, starts, ends, axes]);
  const tail = o.sqrt || o.offset !== undefined;
  const [mean] = g.addNode('ReduceMean', [first!], {
    attributes: { axes: { ints: [1, 2, 3] }, keepdims: { i: 0 } },
    ...(tail ? {} : { outputs: ['progress'] }),
  });
  if (o.sqrt) g.addNode('Sqrt', [mean!], { outputs: ['progress'] });
  if (o.offset !== undefined) {
    g.addNode('Add', [mean!, g.addInitializer('offset', [o.offset], [1])], { outputs: ['progress'] });
  }
  const w = g.addInitializer('w', [0.25, 0.75], [2, 1]);
  g.addNode('MatMul', [task, w], { outputs: ['done'] });
  g.addOutput('progress', 'float32', ['B']);
  g.addOutput('done', 'float32', ['B', 1]);
  const meta = o.metadata === undefined ? spec() : o.metadata;
  if (meta !== null) g.setMetadata('progress_bridge', typeof meta === 'string' ? meta : JSON.stringify(meta));
  g.setMetadata('version', 'test-1');
  const path = join(dir, `${name}.onnx`);
  writeFileSync(path, g.toBytes());
  return path;
}

function uniform(value: number, size = SIZE): ProgressImage {
  return { width: size, height: size, rgb: new Uint8Array(size * size * 3).fill(value) };
}

function request(
  views: Record<string, ProgressImage>,
  instruction = INSTRUCTIONS[0]!,
  step = 0,
): ProgressRequest {
  return { instruction, views, envId: 0, episodeId: 0, step };
}

describe('onnx progress backend', () => {
  it('feeds the views as the metadata says: (v/255 - 0.5)/0.25, cameras in order, one-hot task', async () => {
    const model = await OnnxProgressModel.load(buildModel('ok'));
    try {
      const answers = await model.predict([
        // front 153 -> (0.6 - 0.5) / 0.25 = 0.4; the wrist camera must not leak into the first three channels.
        request({ front: uniform(153), wrist: uniform(255) }),
        // front 204 -> 1.2, clamped to 1; second instruction -> done 0.75.
        request({ front: uniform(204), wrist: uniform(0) }, 'Open the  drawer'),
        // front 0 -> -2, clamped to 0.
        request({ front: uniform(0), wrist: uniform(0) }),
        // a 32x32 view is resized to 8x8; uniform stays uniform.
        request({ front: uniform(153, 32), wrist: uniform(9, 16) }),
      ]);
      expect(answers.map((a) => a.status)).toEqual(['ok', 'ok', 'ok', 'ok']);
      expect(answers[0]!.progress).toBeCloseTo(0.4, 5);
      expect(answers[1]!.progress).toBe(1);
      expect(answers[2]!.progress).toBe(0);
      expect(answers[3]!.progress).toBeCloseTo(0.4, 5);
      expect(answers.map((a) => a.done)).toEqual([0.25, 0.75, 0.25, 0.25]);
      expect(model.id).toBe('ok@test-1 (onnx, cpu)');
    } finally {
      await model.close();
    }
  });

  it('answers a request it cannot feed with an error, not a 0, and still scores the rest of the batch', async () => {
    const model = await OnnxProgressModel.load(buildModel('partial'));
    try {
      const answers = await model.predict([
        request({ front: uniform(153) }),
        request({ front: uniform(153), wrist: uniform(0) }, 'make coffee'),
        request({ front: uniform(153), wrist: uniform(0) }),
      ]);
      expect(answers[0]).toMatchObject({ status: 'error' });
      expect(answers[0]!.error).toContain('"wrist"');
      expect(Number.isNaN(answers[0]!.progress)).toBe(true);
      expect(answers[1]).toMatchObject({ status: 'error' });
      expect(answers[1]!.error).toContain('push the cube');
      expect(answers[2]!.progress).toBeCloseTo(0.4, 5);
    } finally {
      await model.close();
    }
  });

  it('turns a NaN output into a missing answer', async () => {
    const model = await OnnxProgressModel.load(buildModel('nan', { sqrt: true }));
    try {
      const [neg, pos] = await model.predict([
        request({ front: uniform(0), wrist: uniform(0) }),
        request({ front: uniform(204), wrist: uniform(0) }),
      ]);
      expect(neg!.status).toBe('error');
      expect(Number.isNaN(neg!.progress)).toBe(true);
      expect(pos!.progress).toBe(1); // sqrt(1.2) clamped
    } finally {
      await model.close();
    }
  });

  it('fails at load, naming the tensor, when the model does not match its metadata', async () => {
    const load = (path: string): Promise<unknown> => OnnxProgressModel.load(path);
    await expect(load(buildModel('size', { metadata: spec({ height: 16, width: 16 }) }))).rejects.toThrow(
      /images: dimension 2 is 8, the metadata says 16/,
    );
    await expect(load(buildModel('name', { metadata: spec({ input: 'pixels' }) }))).rejects.toThrow(
      /pixels: the metadata names input "pixels" but the model's inputs are images, task/,
    );
    await expect(load(buildModel('extra', { extraInput: true }))).rejects.toThrow(
      /depth: the model has an input/,
    );
    await expect(load(buildModel('nometa', { metadata: null }))).rejects.toThrow(/progress_bridge/);
    await expect(load(buildModel('notjson', { metadata: '{oops' }))).rejects.toThrow(/is not JSON/);
    const badStd = { ...spec(), images: { ...spec().images, std: [0.25, 0, 0.25] } };
    await expect(load(buildModel('std', { metadata: badStd as ProgressModelSpec }))).rejects.toThrow(
      /images\.std\[1\] must be a positive number/,
    );
    const err = await load(buildModel('size2', { metadata: spec({ height: 16 }) })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OnnxSignatureMismatch);
    expect((err as OnnxSignatureMismatch).tensor).toBe('images');
  });

  it('reads the spec from a sidecar JSON file when the model has no metadata', async () => {
    const path = buildModel('sidecar', { metadata: null });
    writeFileSync(`${path}.json`, JSON.stringify(spec()));
    const model = await OnnxProgressModel.load(path);
    const [a] = await model.predict([request({ front: uniform(153), wrist: uniform(0) })]);
    expect(a!.progress).toBeCloseTo(0.4, 5);
    await model.close();
  });

  it('falls back to the CPU with one warning when a requested execution provider is absent', async () => {
    const warnings: string[] = [];
    const model = await OnnxProgressModel.load(buildModel('ep'), {
      executionProviders: ['cuda', 'cpu'],
      warn: (m) => warnings.push(m),
    });
    try {
      expect(model.provider).toBe('cpu');
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(/execution provider "cuda" unavailable.*running on cpu/);
    } finally {
      await model.close();
    }
  });

  it('measures how far two sessions answer apart on a probe batch, for vetting a non-CPU provider', async () => {
    const open = (path: string): Promise<ort.InferenceSession> =>
      ort.InferenceSession.create(path, { executionProviders: ['cpu'] });
    const [plain, shifted, again, nan] = await Promise.all([
      open(buildModel('gap-plain')),
      open(buildModel('gap-shifted', { offset: 0.3 })),
      open(buildModel('gap-plain-again')),
      open(buildModel('gap-sqrt', { sqrt: true })),
    ]);
    try {
      // progress differs by exactly the offset on every state, done not at all.
      const shift = await sessionGap(shifted, plain, spec());
      expect(shift.output).toBe('progress');
      expect(shift.gap).toBeCloseTo(0.3, 6);
      expect(await sessionGap(again, plain, spec(), 5)).toEqual({ gap: 0, output: 'progress' });
      // Random pixels have a normalised mean near 0, so sqrt is NaN on some states: never an agreement.
      expect((await sessionGap(nan, plain, spec())).gap).toBe(Infinity);
    } finally {
      await Promise.all([plain, shifted, again, nan].map((s) => s.release()));
    }
    await expect(OnnxProgressModel.load(buildModel('gap-tol'), { providerTolerance: 2 })).rejects.toThrow(
      InvalidArgument,
    );
  });
});
