/**
 * Checkpoint files: everything needed to resume a run (config, counters, RNG state, weights, optimiser moments,
 * normaliser statistics) in one file that is either read back bit for bit or rejected with `CheckpointCorrupt`.
 *
 * Layout (all integers little-endian):
 *
 *   header, 32 bytes
 *     0  magic        8 bytes  89 'P' 'B' 'C' 'K' 'P' 'T' 0a   (0x89 and \n catch text-mode/ASCII mangling)
 *     8  version      u32      1
 *    12  flags        u32      0 (reserved)
 *    16  body length  u64      bytes after the header
 *    24  body CRC32   u32      over the whole body
 *    28  header CRC32 u32      over bytes 0..27, so a damaged length is reported as damage, not as truncation
 *   body
 *        index length u32
 *        index        UTF-8 JSON {meta, arrays: [{name, dtype, length, offset}]}
 *        zero padding to a multiple of 8 bytes
 *        data: array sections, each at `offset` bytes from the start of the data, raw little-endian elements,
 *        zero padding to 8 (so every section is 8-aligned in the file and could be mapped in place)
 */
import { readFile } from 'node:fs/promises';
import { endianness } from 'node:os';
import {
  CheckpointCorrupt,
  FileNotFoundError,
  InvalidArgument,
  type CheckpointProblem,
} from '../sim/errors.ts';
import { atomicWriteFile } from './atomic-write.ts';
import { crc32 } from './crc32.ts';

export { atomicWriteFile } from './atomic-write.ts';

/** The typed arrays a checkpoint stores; each comes back as the same type. */
export type CheckpointArray = Float32Array | Float64Array | Int32Array | Uint32Array | Uint8Array;

export interface Checkpoint<M extends object = Record<string, unknown>> {
  /** Scalars and config: anything JSON can hold exactly (finite numbers, strings, booleans, null, nesting). */
  meta: M;
  /** Named binary sections, stored bit-exact (NaN payloads and -0 included). */
  arrays: Record<string, CheckpointArray>;
}

export const CHECKPOINT_VERSION = 1;
const MAGIC = Uint8Array.of(0x89, 0x50, 0x42, 0x43, 0x4b, 0x50, 0x54, 0x0a);
const HEADER_BYTES = 32;
const ALIGN = 8;

type DType = 'float32' | 'float64' | 'int32' | 'uint32' | 'uint8';
const CTOR: Record<DType, { new (n: number): CheckpointArray; BYTES_PER_ELEMENT: number }> = {
  float32: Float32Array,
  float64: Float64Array,
  int32: Int32Array,
  uint32: Uint32Array,
  uint8: Uint8Array,
};

interface IndexEntry {
  name: string;
  dtype: DType;
  length: number;
  offset: number;
}

function dtypeOf(name: string, a: unknown): DType {
  if (a instanceof Float32Array) return 'float32';
  if (a instanceof Float64Array) return 'float64';
  if (a instanceof Int32Array) return 'int32';
  if (a instanceof Uint32Array) return 'uint32';
  // Checked after the others: Buffer is a Uint8Array and is fine; Uint8ClampedArray is not one.
  if (a instanceof Uint8Array) return 'uint8';
  throw new InvalidArgument(
    `arrays.${name}`,
    'must be a Float32Array, Float64Array, Int32Array, Uint32Array or Uint8Array',
  );
}

// Raw byte copies keep NaN payloads; the file is little-endian, so on a big-endian host they would be wrong.
function assertLittleEndian(): void {
  if (endianness() !== 'LE')
    throw new Error('checkpoints are little-endian; big-endian hosts are not supported');
}

const padTo = (n: number): number => (ALIGN - (n % ALIGN)) % ALIGN;

function encodeMeta(meta: object): string {
  if (meta === null || typeof meta !== 'object' || Array.isArray(meta)) {
    throw new InvalidArgument('meta', 'must be a plain object');
  }
  // JSON would turn NaN and Infinity into null: a resumed run would then read null where a number was.
  return JSON.stringify(meta, (key, value: unknown) => {
    if (typeof value === 'number' && !Number.isFinite(value)) {
      throw new InvalidArgument(
        'meta',
        `"${key}" is ${value}; JSON cannot hold it, store it in a Float64Array section instead`,
      );
    }
    return value;
  });
}

/**
 * Writes a checkpoint atomically: after a crash at any point `path` holds either the previous checkpoint or the
 * new one. Arrays are not copied; do not change them until the returned promise settles.
 */
export async function writeCheckpoint(path: string, checkpoint: Checkpoint<object>): Promise<void> {
  assertLittleEndian();
  const entries: IndexEntry[] = [];
  const sections: Uint8Array[] = [];
  let offset = 0;
  for (const [name, array] of Object.entries(checkpoint.arrays)) {
    const dtype = dtypeOf(name, array);
    entries.push({ name, dtype, length: array.length, offset });
    sections.push(new Uint8Array(array.buffer, array.byteOffset, array.byteLength));
    const pad = padTo(array.byteLength);
    if (pad > 0) sections.push(new Uint8Array(pad));
    offset += array.byteLength + pad;
  }
  const indexJson = new TextEncoder().encode(
    `{"meta":${encodeMeta(checkpoint.meta)},"arrays":${JSON.stringify(entries)}}`,
  );
  const prefixLen = 4 + indexJson.length;
  const prefix = new Uint8Array(prefixLen + padTo(prefixLen));
  new DataView(prefix.buffer).setUint32(0, indexJson.length, true);
  prefix.set(indexJson, 4);

  const body = [prefix, ...sections];
  let bodyCrc = 0;
  for (const chunk of body) bodyCrc = crc32(chunk, bodyCrc);

  const header = new Uint8Array(HEADER_BYTES);
  const hv = new DataView(header.buffer);
  header.set(MAGIC, 0);
  hv.setUint32(8, CHECKPOINT_VERSION, true);
  hv.setUint32(12, 0, true);
  hv.setBigUint64(16, BigInt(prefix.length + offset), true);
  hv.setUint32(24, bodyCrc, true);
  hv.setUint32(28, crc32(header.subarray(0, 28)), true);
  await atomicWriteFile(path, [header, ...body]);
}

/** Reads a checkpoint written by `writeCheckpoint`. Arrays are fresh copies, each of the type it was written as. */
export async function readCheckpoint<M extends object = Record<string, unknown>>(
  path: string,
): Promise<Checkpoint<M>> {
  assertLittleEndian();
  let file: Buffer;
  try {
    file = await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new FileNotFoundError(path, 'checkpoint');
    throw err;
  }
  return decodeCheckpoint<M>(path, file);
}

/** Parses checkpoint bytes; `path` only labels errors. Exported for checkpoints that arrive over the wire. */
export function decodeCheckpoint<M extends object = Record<string, unknown>>(
  path: string,
  file: Uint8Array,
): Checkpoint<M> {
  const fail = (reason: CheckpointProblem, detail: string) => new CheckpointCorrupt(path, reason, detail);
  const size = file.length;
  const magicSeen = file.subarray(0, MAGIC.length);
  if (!magicSeen.every((b, i) => b === MAGIC[i])) {
    throw fail('bad_magic', 'does not start with the checkpoint magic bytes 89 50 42 43 4b 50 54 0a');
  }
  if (size < 12) throw fail('truncated', `truncated at byte ${size} inside the ${HEADER_BYTES}-byte header`);
  const dv = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const version = dv.getUint32(8, true);
  if (version !== CHECKPOINT_VERSION) {
    throw fail(
      'unsupported_version',
      `format version ${version}; this build reads version ${CHECKPOINT_VERSION} (written by a newer progress-bridge?)`,
    );
  }
  if (size < HEADER_BYTES) {
    throw fail('truncated', `truncated at byte ${size} inside the ${HEADER_BYTES}-byte header`);
  }
  if (crc32(file.subarray(0, 28)) !== dv.getUint32(28, true)) {
    throw fail('checksum_mismatch', 'header checksum mismatch (bytes 0-27 were changed)');
  }
  if (dv.getUint32(12, true) !== 0) throw fail('malformed', `unknown flags ${dv.getUint32(12, true)}`);
  const declared = HEADER_BYTES + Number(dv.getBigUint64(16, true));
  if (size < declared) {
    throw fail('truncated', `truncated at byte ${size}; the header says the file is ${declared} bytes`);
  }
  if (size > declared) {
    throw fail(
      'malformed',
      `${size - declared} unexpected bytes after the end of the body at byte ${declared}`,
    );
  }
  const body = file.subarray(HEADER_BYTES);
  const crc = crc32(body);
  const expected = dv.getUint32(24, true);
  if (crc !== expected) {
    throw fail(
      'checksum_mismatch',
      `body checksum mismatch: CRC32 is ${hex(crc)}, the header says ${hex(expected)} (a byte of the body, after byte 31, was changed)`,
    );
  }
  return decodeBody<M>(body, fail);
}

const hex = (n: number): string => `0x${n.toString(16).padStart(8, '0')}`;

function decodeBody<M extends object>(
  body: Uint8Array,
  fail: (reason: 'malformed', detail: string) => CheckpointCorrupt,
): Checkpoint<M> {
  // Reaching here means the checksum matched, so anything odd below is a writer bug, not disk damage.
  if (body.length < 4) throw fail('malformed', 'body shorter than its index length field');
  const indexLength = new DataView(body.buffer, body.byteOffset, body.byteLength).getUint32(0, true);
  if (4 + indexLength > body.length) throw fail('malformed', `index length ${indexLength} exceeds the body`);
  let index: { meta?: unknown; arrays?: unknown };
  try {
    index = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body.subarray(4, 4 + indexLength)));
  } catch (err) {
    throw fail('malformed', `index is not UTF-8 JSON: ${(err as Error).message}`);
  }
  if (typeof index.meta !== 'object' || index.meta === null || !Array.isArray(index.arrays)) {
    throw fail('malformed', 'index lacks meta or arrays');
  }
  const data = body.subarray(4 + indexLength + padTo(4 + indexLength));
  const arrays: [string, CheckpointArray][] = [];
  for (const raw of index.arrays as unknown[]) {
    const e = raw as Partial<IndexEntry>;
    const ctor = typeof e.dtype === 'string' ? CTOR[e.dtype] : undefined;
    if (
      typeof e.name !== 'string' ||
      !ctor ||
      !Number.isSafeInteger(e.length) ||
      !Number.isSafeInteger(e.offset)
    ) {
      throw fail('malformed', `bad index entry ${JSON.stringify(raw)}`);
    }
    const bytes = e.length! * ctor.BYTES_PER_ELEMENT;
    if (e.offset! < 0 || e.offset! % ALIGN !== 0 || e.offset! + bytes > data.length) {
      throw fail('malformed', `section ${e.name} (${bytes} bytes at ${e.offset}) lies outside the data`);
    }
    const out = new ctor(e.length!);
    new Uint8Array(out.buffer).set(data.subarray(e.offset!, e.offset! + bytes));
    arrays.push([e.name, out]);
  }
  // fromEntries defines own properties, so a section named `__proto__` cannot replace the prototype.
  return { meta: index.meta as M, arrays: Object.fromEntries(arrays) };
}
