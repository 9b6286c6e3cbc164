/**
 * PNG files for rendered frames: 8-bit RGB, no interlacing, deflated with node:zlib. Written here rather than
 * taken from npm because a frame writer needs about a hundred lines, and the project keeps its dependency list to
 * MuJoCo and tsx.
 *
 * `decodePng` reads what `encodePng` writes (and any other non-interlaced 8-bit grey, grey+alpha, RGB or RGBA
 * file), which is what the tests and tools need; it is not a general PNG reader (no palettes, 16-bit or Adam7).
 */
import { deflateSync, inflateSync } from 'node:zlib';
import { crc32 } from '../util/crc32.ts';

/** The eight bytes every PNG starts with (PNG spec, section 5.2). */
export const PNG_SIGNATURE = Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

// The CRC PNG chunks carry is zlib's CRC-32; one implementation serves checkpoints, rig stores and PNG.
export { crc32 };

function chunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  out.set(data, 8);
  // The CRC covers the type and the data, not the length.
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

export interface EncodeOptions {
  /**
   * `adaptive` (default) picks, per row, the filter with the smallest sum of absolute residuals (the heuristic
   * the PNG spec recommends, section 12.8): rendered frames with flat shading shrink 2-4x against `none`.
   */
  filter?: 'none' | 'adaptive';
  /** zlib level 0-9 (default 6). */
  level?: number;
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/**
 * Writes row `cur` filtered with `type` (previous row `prev`, zeros for the first) into `out` after its tag byte
 * and returns the sum of the residuals as signed bytes (small negative residuals deflate as well as small
 * positive ones). One loop per type: a per-byte switch made adaptive encoding three times slower.
 */
function filterRow(type: number, cur: Uint8Array, prev: Uint8Array, bpp: number, out: Uint8Array): number {
  out[0] = type;
  const n = cur.length;
  let cost = 0;
  let r = 0;
  const add = (i: number, pred: number): void => {
    r = (cur[i]! - pred) & 0xff;
    out[i + 1] = r;
    cost += r < 128 ? r : 256 - r;
  };
  if (type === 0) {
    for (let i = 0; i < n; i++) add(i, 0);
  } else if (type === 1) {
    for (let i = 0; i < n; i++) add(i, i >= bpp ? cur[i - bpp]! : 0);
  } else if (type === 2) {
    for (let i = 0; i < n; i++) add(i, prev[i]!);
  } else if (type === 3) {
    for (let i = 0; i < n; i++) add(i, ((i >= bpp ? cur[i - bpp]! : 0) + prev[i]!) >>> 1);
  } else {
    for (let i = 0; i < bpp; i++) add(i, prev[i]!);
    for (let i = bpp; i < n; i++) add(i, paeth(cur[i - bpp]!, prev[i]!, prev[i - bpp]!));
  }
  return cost;
}

/** An 8-bit RGB PNG of a row-major [height, width, 3] image, row 0 at the top. */
export function encodePng(
  rgb: Uint8Array,
  width: number,
  height: number,
  options: EncodeOptions = {},
): Buffer {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`PNG size must be positive integers, got ${width}x${height}`);
  }
  if (width > 0x7fffffff || height > 0x7fffffff) throw new RangeError('PNG size exceeds 2^31 - 1');
  if (rgb.length !== width * height * 3) {
    throw new RangeError(
      `RGB buffer has ${rgb.length} bytes; ${width}x${height}x3 needs ${width * height * 3}`,
    );
  }
  const stride = width * 3;
  const raw = new Uint8Array(height * (stride + 1));
  const adaptive = (options.filter ?? 'adaptive') === 'adaptive';
  const zeros = new Uint8Array(stride);
  const trial = new Uint8Array(stride + 1);
  for (let y = 0; y < height; y++) {
    const cur = rgb.subarray(y * stride, (y + 1) * stride);
    const prev = y > 0 ? rgb.subarray((y - 1) * stride, y * stride) : zeros;
    const dst = raw.subarray(y * (stride + 1), (y + 1) * (stride + 1));
    if (!adaptive) {
      filterRow(0, cur, prev, 3, dst);
      continue;
    }
    let best = filterRow(0, cur, prev, 3, dst);
    for (let type = 1; type <= 4 && best > 0; type++) {
      const cost = filterRow(type, cur, prev, 3, trial);
      if (cost < best) {
        best = cost;
        dst.set(trial);
      }
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type 2: truecolour (RGB)
  ihdr[10] = 0; // compression method 0: deflate
  ihdr[11] = 0; // filter method 0: the five adaptive filters
  ihdr[12] = 0; // no interlace
  return Buffer.concat([
    PNG_SIGNATURE,
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw, { level: options.level ?? 6 })),
    chunk('IEND', new Uint8Array(0)),
  ]);
}

export interface DecodedPng {
  width: number;
  height: number;
  /** Samples per pixel: 1 grey, 2 grey + alpha, 3 RGB, 4 RGBA. */
  channels: 1 | 2 | 3 | 4;
  /** Row-major [height, width, channels], row 0 at the top. */
  pixels: Uint8Array;
}

const CHANNELS_BY_COLOUR_TYPE: Record<number, 1 | 2 | 3 | 4> = { 0: 1, 2: 3, 4: 2, 6: 4 };

/** Reads a non-interlaced 8-bit PNG, checking the signature and every chunk's CRC. */
export function decodePng(file: Uint8Array): DecodedPng {
  const buf = Buffer.from(file.buffer, file.byteOffset, file.byteLength);
  if (buf.length < 8 || !buf.subarray(0, 8).equals(PNG_SIGNATURE)) {
    throw new Error('not a PNG file: bad signature');
  }
  let pos = 8;
  let width = 0;
  let height = 0;
  let channels: 1 | 2 | 3 | 4 | undefined;
  const idat: Buffer[] = [];
  let ended = false;
  while (pos + 12 <= buf.length && !ended) {
    const len = buf.readUInt32BE(pos);
    const type = buf.toString('latin1', pos + 4, pos + 8);
    if (pos + 12 + len > buf.length) throw new Error(`PNG chunk ${type} runs past the end of the file`);
    const data = buf.subarray(pos + 8, pos + 8 + len);
    const crc = buf.readUInt32BE(pos + 8 + len);
    if (crc32(buf.subarray(pos + 4, pos + 8 + len)) !== crc) throw new Error(`PNG chunk ${type}: bad CRC`);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      const [depth, colour, , , interlace] = [data[8]!, data[9]!, data[10]!, data[11]!, data[12]!];
      channels = CHANNELS_BY_COLOUR_TYPE[colour];
      if (depth !== 8 || channels === undefined || interlace !== 0) {
        throw new Error(
          `unsupported PNG: bit depth ${depth}, colour type ${colour}, interlace ${interlace} (8-bit, non-interlaced grey/RGB/RGBA only)`,
        );
      }
    } else if (type === 'IDAT') {
      idat.push(data);
    } else if (type === 'IEND') {
      ended = true;
    }
    pos += 12 + len;
  }
  if (channels === undefined) throw new Error('PNG has no IHDR chunk');
  if (!ended) throw new Error('PNG has no IEND chunk (truncated file?)');
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  if (raw.length !== height * (stride + 1)) {
    throw new Error(
      `PNG image data is ${raw.length} bytes; ${width}x${height} needs ${height * (stride + 1)}`,
    );
  }
  const pixels = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const type = raw[y * (stride + 1)]!;
    if (type > 4) throw new Error(`PNG row ${y}: unknown filter type ${type}`);
    const src = y * (stride + 1) + 1;
    const row = y * stride;
    for (let i = 0; i < stride; i++) {
      const a = i >= channels ? pixels[row + i - channels]! : 0;
      const b = y > 0 ? pixels[row - stride + i]! : 0;
      const c = i >= channels && y > 0 ? pixels[row - stride + i - channels]! : 0;
      let pred = 0;
      if (type === 1) pred = a;
      else if (type === 2) pred = b;
      else if (type === 3) pred = (a + b) >>> 1;
      else if (type === 4) pred = paeth(a, b, c);
      pixels[row + i] = (raw[src + i]! + pred) & 0xff;
    }
  }
  return { width, height, channels, pixels };
}
