/**
 * Tensors on the wire: `{dtype, shape, data}` with `data` the raw little-endian bytes, row-major (C order).
 *
 * Why bytes and not typed arrays: msgpackr's default encoder silently corrupts Float32Array fields (DESIGN.md,
 * "Traps"), and msgpackr's typed-array extension is msgpackr-only. Plain MessagePack `bin` with the dtype and
 * shape beside it decodes in any language (numpy: `np.frombuffer(data, dtype).reshape(shape)`).
 */
import { ProtocolError } from './errors.ts';
import { bytes, oneOf, type Schema } from './schema.ts';

export const DTYPES = ['float32', 'float64', 'int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32'] as const;
export type Dtype = (typeof DTYPES)[number];

export interface TypedArrayOf {
  float32: Float32Array;
  float64: Float64Array;
  int8: Int8Array;
  uint8: Uint8Array;
  int16: Int16Array;
  uint16: Uint16Array;
  int32: Int32Array;
  uint32: Uint32Array;
}
export type AnyTypedArray = TypedArrayOf[Dtype];
/** The dtype name of a typed array type (Float32Array -> 'float32'). */
export type DtypeOf<A extends AnyTypedArray> = {
  [D in Dtype]: A extends TypedArrayOf[D] ? (TypedArrayOf[D] extends A ? D : never) : never;
}[Dtype];

const CTOR = {
  float32: Float32Array,
  float64: Float64Array,
  int8: Int8Array,
  uint8: Uint8Array,
  int16: Int16Array,
  uint16: Uint16Array,
  int32: Int32Array,
  uint32: Uint32Array,
} as const;

export const ITEM_SIZE: Record<Dtype, number> = {
  float32: 4,
  float64: 8,
  int8: 1,
  uint8: 1,
  int16: 2,
  uint16: 2,
  int32: 4,
  uint32: 4,
};

export interface Tensor<D extends Dtype = Dtype> {
  dtype: D;
  /** Row-major dimensions; [] is a scalar (one element). */
  shape: number[];
  /** Little-endian element bytes, exactly product(shape) * itemsize of them. */
  data: Uint8Array;
}

// Every platform Node and browsers ship on today is little-endian; a big-endian one would need byte swaps here.
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function dtypeOf(a: AnyTypedArray): Dtype {
  for (const d of DTYPES) if (a instanceof CTOR[d]) return d;
  throw new TypeError(`unsupported typed array ${Object.prototype.toString.call(a)}`);
}

/**
 * A tensor over the array's own bytes (no copy: encode it before the array changes). `shape` defaults to
 * [length].
 */
export function toTensor<A extends AnyTypedArray>(
  array: A,
  shape: number[] = [array.length],
): Tensor<DtypeOf<A>> {
  if (!LITTLE_ENDIAN) throw new Error('big-endian platforms are not supported by the tensor codec');
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== array.length) {
    throw new RangeError(
      `shape [${shape.join(', ')}] holds ${count} elements; the array has ${array.length}`,
    );
  }
  return {
    dtype: dtypeOf(array) as DtypeOf<A>,
    shape: [...shape],
    data: new Uint8Array(array.buffer, array.byteOffset, array.byteLength),
  };
}

/**
 * The typed array a tensor holds. A view when the bytes are aligned for the dtype, a copy when not (decoders
 * hand out slices of the message buffer at any offset).
 */
export function fromTensor<D extends Dtype>(t: Tensor<D>): TypedArrayOf[D] {
  const Ctor = CTOR[t.dtype] as unknown as {
    new (buffer: ArrayBufferLike, byteOffset: number, length: number): TypedArrayOf[D];
    new (length: number): TypedArrayOf[D];
  };
  const size = ITEM_SIZE[t.dtype];
  const n = t.data.byteLength / size;
  if (t.data.byteOffset % size === 0) return new Ctor(t.data.buffer, t.data.byteOffset, n);
  const copy = new Uint8Array(t.data.byteLength);
  copy.set(t.data);
  return new Ctor(copy.buffer, 0, n);
}

export interface TensorConstraint<D extends Dtype> {
  /** Allowed dtypes (default: any). */
  dtype?: readonly D[];
  /** Expected dimensions; `null` leaves one free. Omitted: any rank up to 8. */
  shape?: readonly (number | null)[];
  /** Most elements allowed. */
  maxElements?: number;
}

/** Schema of a tensor field: dtype known, shape non-negative integers, byte length equal to the shape's. */
export function tensor<D extends Dtype = Dtype>(c: TensorConstraint<D> = {}): Schema<Tensor<D>> {
  const dtypes = (c.dtype ?? DTYPES) as readonly D[];
  const dtypeSchema = oneOf(dtypes);
  const dataSchema = bytes();
  const maxElements = c.maxElements ?? 16 * 1024 * 1024;
  const describe = `tensor ${dtypes.join('|')}${c.shape ? ` [${c.shape.map((d) => d ?? 'N').join(', ')}]` : ''}`;
  return {
    describe,
    parse(v, path = '') {
      if (v === null || typeof v !== 'object' || Array.isArray(v) || v instanceof Uint8Array) {
        throw new ProtocolError('WRONG_TYPE', `expected ${describe} as a map {dtype, shape, data}`, path);
      }
      const t = v as Record<string, unknown>;
      for (const k of ['dtype', 'shape', 'data']) {
        if (t[k] === undefined || t[k] === null)
          throw new ProtocolError('MISSING_FIELD', `required`, `${path}.${k}`);
      }
      let dtype: D;
      try {
        dtype = dtypeSchema.parse(t.dtype);
      } catch (err) {
        throw new ProtocolError('BAD_TENSOR', (err as Error).message, `${path}.dtype`, { cause: err });
      }
      const shape = t.shape;
      if (!Array.isArray(shape) || shape.length > 8) {
        throw new ProtocolError(
          'BAD_TENSOR',
          'shape must be an array of at most 8 dimensions',
          `${path}.shape`,
        );
      }
      let count = 1;
      for (let i = 0; i < shape.length; i++) {
        const d = shape[i] as unknown;
        if (typeof d !== 'number' || !Number.isInteger(d) || d < 0) {
          throw new ProtocolError(
            'BAD_TENSOR',
            `dimension ${i} must be a non-negative integer`,
            `${path}.shape`,
          );
        }
        const want = c.shape?.[i];
        if (want !== undefined && want !== null && d !== want) {
          throw new ProtocolError('BAD_TENSOR', `dimension ${i} must be ${want}, got ${d}`, `${path}.shape`);
        }
        count *= d;
      }
      if (c.shape && shape.length !== c.shape.length) {
        throw new ProtocolError(
          'BAD_TENSOR',
          `expected ${c.shape.length} dimensions, got ${shape.length}`,
          `${path}.shape`,
        );
      }
      if (count > maxElements) {
        throw new ProtocolError(
          'BAD_TENSOR',
          `at most ${maxElements} elements allowed, got ${count}`,
          `${path}.shape`,
        );
      }
      const data = dataSchema.parse(t.data, `${path}.data`);
      const expected = count * ITEM_SIZE[dtype];
      if (data.byteLength !== expected) {
        throw new ProtocolError(
          'BAD_TENSOR',
          `${dtype} [${(shape as number[]).join(', ')}] needs ${expected} bytes, got ${data.byteLength}`,
          `${path}.data`,
        );
      }
      return { dtype, shape: shape as number[], data };
    },
  };
}
