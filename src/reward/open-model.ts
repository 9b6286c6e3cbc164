/**
 * From what a user types (`--model default|oracle|path.onnx|http://...`) to a ready progress model, together with
 * what it needs to be fed: which cameras and at what resolution to render them.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { FileNotFoundError, InvalidArgument } from '../sim/errors.ts';
import { createHttpProgressModel, type CreateHttpProgressModelOptions } from './http/factory.ts';
import type { ProgressModel } from './model.ts';
import { OnnxProgressModel, type OnnxProgressOptions } from './onnx.ts';
import { OracleProgressModel, parseNoisyOracle } from './oracle.ts';

/** The shipped default progress model (trained by models/train_default.py). */
export const DEFAULT_MODEL_PATH = fileURLToPath(
  new URL('../../models/default-progress.onnx', import.meta.url),
);

/** Cameras and resolution sent to remote VLMs unless told otherwise (what such models are trained at). */
export const REMOTE_CAMERAS = ['front', 'side', 'wrist'];
export const REMOTE_IMAGE_SIZE = 224;

export type ModelKind = 'onnx' | 'oracle' | 'http';

export interface OpenedModel {
  model: ProgressModel;
  kind: ModelKind;
  /** Cameras to render for each request (none for the oracle, which reads the simulator's state). */
  cameras: string[];
  /** Square image size to render at. */
  size: number;
}

export interface OpenModelOptions {
  onnx?: OnnxProgressOptions;
  http?: CreateHttpProgressModelOptions;
}

export async function openProgressModel(
  source: string,
  options: OpenModelOptions = {},
): Promise<OpenedModel> {
  if (source === 'oracle') return { model: new OracleProgressModel(), kind: 'oracle', cameras: [], size: 0 };
  const noiseStd = parseNoisyOracle(source);
  if (noiseStd !== undefined) {
    return { model: new OracleProgressModel(noiseStd), kind: 'oracle', cameras: [], size: 0 };
  }
  if (/^https?:\/\//i.test(source)) {
    const cameras = options.http?.cameras ?? REMOTE_CAMERAS;
    const model = await createHttpProgressModel(source, { cameras, ...options.http });
    return { model, kind: 'http', cameras, size: REMOTE_IMAGE_SIZE };
  }
  let path = source;
  if (source === 'default') {
    path = DEFAULT_MODEL_PATH;
    if (!existsSync(path)) {
      throw new FileNotFoundError(
        path,
        'default progress model (rebuild it with `npm run train:reward-model`)',
      );
    }
  } else if (!source.endsWith('.onnx')) {
    throw new InvalidArgument(
      '--model',
      `must be default, oracle, oracle:noise=STD, a path to an .onnx file or an http(s):// URL, got "${source}"`,
    );
  }
  const model = await OnnxProgressModel.load(path, {
    ...(source === 'default' ? { name: 'default' } : {}),
    ...options.onnx,
  });
  const { cameras, height } = model.spec.images;
  return { model, kind: 'onnx', cameras: [...cameras], size: height };
}
