/**
 * NumPy `.npy` files (format 1.0): the demo frames are written in this format so a training script reads them with
 * `numpy.load` and nothing else. Only C-order arrays of the dtypes we produce are supported.
 */
import { readFileSync } from 'node:fs';
import { InvalidArgument } from '../sim/errors.ts';

export type NpyArray = Uint8Array | Float32Array | Int32Array;

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

function descr(data: NpyArray): string {
  if (data instanceof Uint8Array) return '|u1';
  if (data instanceof Float32Array) return '<f4';
  return '<i4';
}

/** The bytes of an .npy file holding `data` with `shape` (little-endian, C order). */
export function encodeNpy(data: NpyArray, shape: readonly number[]): Uint8Array {
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length) {
    throw new InvalidArgument(
      'shape',
      `[${shape.join(', ')}] holds ${count} elements, data has ${data.length}`,
    );
  }
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${descr(data)}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  // The header (with magic, version and length) is padded to a multiple of 64 bytes and ends in a newline.
  const unpadded = MAGIC.length + 2 + 2 + header.length + 1;
  header += ' '.repeat((64 - (unpadded % 64)) % 64) + '\n';
  const body = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const out = new Uint8Array(MAGIC.length + 4 + header.length + body.length);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  out[8] = header.length & 0xff;
  out[9] = header.length >> 8;
  for (let i = 0; i < header.length; i++) out[10 + i] = header.charCodeAt(i);
  out.set(body, 10 + header.length);
  return out;
}

/** Reads an .npy file written by `encodeNpy` (or numpy, for the same dtypes). */
export function readNpy(path: string): { data: NpyArray; shape: number[] } {
  const bytes = readFileSync(path);
  if (bytes.length < 10 || MAGIC.some((m, i) => bytes[i] !== m)) {
    throw new InvalidArgument(path, 'is not an .npy file (bad magic)');
  }
  const headerLen = bytes[8]! | (bytes[9]! << 8);
  const header = bytes.subarray(10, 10 + headerLen).toString('latin1');
  const d = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!d || shapeText === undefined || /'fortran_order':\s*True/.test(header)) {
    throw new InvalidArgument(path, `unsupported .npy header ${header.trim()}`);
  }
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map(Number);
  const start = 10 + headerLen;
  // Copy so the array is aligned whatever the header length.
  const body = new Uint8Array(bytes.subarray(start)).buffer;
  const data =
    d === '|u1'
      ? new Uint8Array(body)
      : d === '<f4'
        ? new Float32Array(body)
        : d === '<i4'
          ? new Int32Array(body)
          : undefined;
  if (!data) throw new InvalidArgument(path, `unsupported dtype ${d}`);
  return { data, shape };
}
