/**
 * Turning request views into a model's image tensor: the layout, resolution and normalisation come from the
 * model's metadata (see `ImageInputSpec`), so any ONNX progress model that declares them can be fed.
 */
import type { ProgressImage } from './model.ts';

/** How a model wants its images (the `images` part of the `progress_bridge` metadata). */
export interface ImageInputSpec {
  /** Name of the model input. */
  input: string;
  /** Cameras in the order the model stacks them. */
  cameras: string[];
  height: number;
  width: number;
  /** `NCHW`: views stacked on channels, [B, V*3, H, W] (channel v*3 + c); `NVCHW`: [B, V, 3, H, W]. */
  layout: 'NCHW' | 'NVCHW';
  /** Each pixel becomes (value * scale - mean[c]) / std[c]. */
  scale: number;
  mean: [number, number, number];
  std: [number, number, number];
}

/** Elements per batch item: V views of 3 x H x W (the same count for both layouts). */
export function itemSize(spec: ImageInputSpec): number {
  return spec.cameras.length * 3 * spec.height * spec.width;
}

/**
 * Writes one request's views into `out` at batch index `b`, resizing each view to the model's resolution.
 * Returns the name of the first camera the request lacks, or undefined when all were there.
 */
export function writeViews(
  spec: ImageInputSpec,
  views: Record<string, ProgressImage>,
  out: Float32Array,
  b: number,
): string | undefined {
  const { height: h, width: w, scale, mean, std } = spec;
  const plane = h * w;
  const base = b * itemSize(spec);
  for (let v = 0; v < spec.cameras.length; v++) {
    const img = views[spec.cameras[v]!];
    if (!img) return spec.cameras[v];
    const src = img.width === w && img.height === h ? img.rgb : resizeBilinear(img, w, h);
    // Both layouts put view v's three planes next to each other, so the offsets are the same.
    const o = base + v * 3 * plane;
    for (let c = 0; c < 3; c++) {
      const k = scale / std[c]!;
      const m = mean[c]! / std[c]!;
      const dst = o + c * plane;
      for (let i = 0; i < plane; i++) out[dst + i] = src[3 * i + c]! * k - m;
    }
  }
  return undefined;
}

/**
 * Resamples an RGB image to `w` x `h`. Bilinear on pixel centres, averaging over the source footprint when
 * shrinking by more than 2x so small objects (a 5 cm cube is a few pixels) do not alias away.
 */
export function resizeBilinear(img: ProgressImage, w: number, h: number): Uint8Array {
  const out = new Uint8Array(w * h * 3);
  const sx = img.width / w;
  const sy = img.height / h;
  // Supersampling factor per axis: 1 for enlarging or mild shrinking.
  const nx = Math.max(1, Math.floor(sx / 2) * 2);
  const ny = Math.max(1, Math.floor(sy / 2) * 2);
  const src = img.rgb;
  const maxX = img.width - 1;
  const maxY = img.height - 1;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let r = 0;
      let g = 0;
      let bl = 0;
      for (let j = 0; j < ny; j++) {
        const fy = Math.min(maxY, Math.max(0, (y + (j + 0.5) / ny) * sy - 0.5));
        const y0 = Math.floor(fy);
        const y1 = Math.min(maxY, y0 + 1);
        const ty = fy - y0;
        for (let i = 0; i < nx; i++) {
          const fx = Math.min(maxX, Math.max(0, (x + (i + 0.5) / nx) * sx - 0.5));
          const x0 = Math.floor(fx);
          const x1 = Math.min(maxX, x0 + 1);
          const tx = fx - x0;
          const a = 3 * (y0 * img.width + x0);
          const bq = 3 * (y0 * img.width + x1);
          const c = 3 * (y1 * img.width + x0);
          const d = 3 * (y1 * img.width + x1);
          const w00 = (1 - tx) * (1 - ty);
          const w01 = tx * (1 - ty);
          const w10 = (1 - tx) * ty;
          const w11 = tx * ty;
          r += src[a]! * w00 + src[bq]! * w01 + src[c]! * w10 + src[d]! * w11;
          g += src[a + 1]! * w00 + src[bq + 1]! * w01 + src[c + 1]! * w10 + src[d + 1]! * w11;
          bl += src[a + 2]! * w00 + src[bq + 2]! * w01 + src[c + 2]! * w10 + src[d + 2]! * w11;
        }
      }
      const n = nx * ny;
      const o = 3 * (y * w + x);
      out[o] = Math.round(r / n);
      out[o + 1] = Math.round(g / n);
      out[o + 2] = Math.round(bl / n);
    }
  }
  return out;
}

/**
 * Env n's views out of a vector env's image batch ([numEnvs, size, size, 3] per camera), as copies: the vector
 * env reuses its buffers, and a request still queued must not see a later step's pixels.
 */
export function envViews(
  images: Record<string, Uint8Array> | undefined,
  n: number,
  cameras: readonly string[],
  size: number,
): Record<string, ProgressImage> {
  const views: Record<string, ProgressImage> = {};
  if (!images) return views;
  const per = size * size * 3;
  for (const camera of cameras) {
    const all = images[camera];
    if (all) views[camera] = { width: size, height: size, rgb: all.slice(n * per, (n + 1) * per) };
  }
  return views;
}
