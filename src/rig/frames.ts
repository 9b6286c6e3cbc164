/**
 * Rig camera frames: cheap checks that a frame is what its camera declared (done for every frame, before it is
 * stored), and decoding to RGB for the reward model (done only for the cameras the model reads).
 *
 * JPEG frames are decoded by our own baseline decoder (src/rig/jpeg.ts): baseline and extended-Huffman
 * sequential files, the kind camera drivers produce. A progressive JPEG is stored as received but cannot be
 * scored: its state's Phi is missing (held from the previous state) and the rig gets one warning.
 */
import { ProtocolError } from '../protocol/errors.ts';
import type { RigCamera } from '../protocol/rig.ts';
import { decodePng, PNG_SIGNATURE } from '../render/png.ts';
import { decodeJpeg } from './jpeg.ts';
import type { ProgressImage } from '../reward/model.ts';

/** Encodings the server can turn into pixels for the reward model. */
export const DECODABLE_ENCODINGS: readonly RigCamera['encoding'][] = ['png', 'raw', 'jpeg'];

/** Throws a ProtocolError (path `frames.<camera>`) unless `data` looks like a frame of `camera`'s declaration. */
export function checkFrame(camera: RigCamera, data: Uint8Array): void {
  const path = `frames.${camera.name}`;
  const { width, height } = camera;
  switch (camera.encoding) {
    case 'raw':
      if (data.byteLength !== width * height * 3) {
        throw new ProtocolError(
          'INVALID_VALUE',
          `raw RGB ${width}x${height} needs ${width * height * 3} bytes, got ${data.byteLength}`,
          path,
        );
      }
      return;
    case 'png': {
      if (data.byteLength < 33 || PNG_SIGNATURE.some((b, i) => data[i] !== b)) {
        throw new ProtocolError('INVALID_VALUE', 'not a PNG (bad signature)', path);
      }
      const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
      const w = view.getUint32(16);
      const h = view.getUint32(20);
      if (w !== width || h !== height) {
        throw new ProtocolError(
          'INVALID_VALUE',
          `PNG is ${w}x${h}; the camera declared ${width}x${height}`,
          path,
        );
      }
      return;
    }
    case 'jpeg': {
      if (data.byteLength < 4 || data[0] !== 0xff || data[1] !== 0xd8) {
        throw new ProtocolError('INVALID_VALUE', 'not a JPEG (no SOI marker)', path);
      }
      const size = jpegSize(data);
      if (size && (size.width !== width || size.height !== height)) {
        throw new ProtocolError(
          'INVALID_VALUE',
          `JPEG is ${size.width}x${size.height}; the camera declared ${width}x${height}`,
          path,
        );
      }
      return;
    }
    default: {
      const never: never = camera.encoding;
      throw new ProtocolError('INVALID_VALUE', `unknown encoding ${String(never)}`, path);
    }
  }
}

/** Width and height from a JPEG's SOFn header, or undefined when the markers before it run off the end. */
function jpegSize(data: Uint8Array): { width: number; height: number } | undefined {
  let pos = 2;
  while (pos + 4 <= data.length) {
    if (data[pos] !== 0xff) return undefined;
    const marker = data[pos + 1]!;
    if (marker === 0xff) {
      pos++;
      continue;
    }
    const len = (data[pos + 2]! << 8) | data[pos + 3]!;
    // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC).
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      if (pos + 9 > data.length) return undefined;
      return {
        height: (data[pos + 5]! << 8) | data[pos + 6]!,
        width: (data[pos + 7]! << 8) | data[pos + 8]!,
      };
    }
    pos += 2 + len;
  }
  return undefined;
}

/** RGB pixels of a checked frame for the reward model; throws for encodings this server cannot decode. */
export function decodeFrame(camera: RigCamera, data: Uint8Array): ProgressImage {
  if (camera.encoding === 'raw') return { width: camera.width, height: camera.height, rgb: data };
  if (camera.encoding === 'png') {
    const png = decodePng(data);
    const { width, height, channels, pixels } = png;
    if (channels === 3) return { width, height, rgb: pixels };
    const rgb = new Uint8Array(width * height * 3);
    for (let i = 0, n = width * height; i < n; i++) {
      const grey = channels <= 2;
      const s = i * channels;
      rgb[3 * i] = pixels[s]!;
      rgb[3 * i + 1] = grey ? pixels[s]! : pixels[s + 1]!;
      rgb[3 * i + 2] = grey ? pixels[s]! : pixels[s + 2]!;
    }
    return { width, height, rgb };
  }
  const jpeg = decodeJpeg(data);
  if (jpeg.width !== camera.width || jpeg.height !== camera.height) {
    throw new ProtocolError(
      'INVALID_VALUE',
      `JPEG decodes to ${jpeg.width}x${jpeg.height}; the camera declared ${camera.width}x${camera.height}`,
      `frames.${camera.name}`,
    );
  }
  return jpeg;
}
