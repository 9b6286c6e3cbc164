/**
 * ONNX ModelProto and the messages it contains, as plain objects, and their protobuf encoding. Field numbers are
 * those of onnx/onnx.proto (https://github.com/onnx/onnx/blob/main/onnx/onnx.proto); fields are written in field
 * number order, as the reference C++ serializer does, so files diff cleanly against ones written by `onnx`.
 */
import { ProtoWriter } from './protobuf.ts';

/** IR version 8 is what ONNX 1.10 - 1.12 write for opset 17; every onnxruntime since 1.11 loads it. */
export const IR_VERSION = 8;
export const OPSET_VERSION = 17;

/** TensorProto.DataType codes, named as onnxruntime-node names tensor types. */
export const DATA_TYPE_CODES = {
  float32: 1,
  uint8: 2,
  int8: 3,
  uint16: 4,
  int16: 5,
  int32: 6,
  int64: 7,
  string: 8,
  bool: 9,
  float16: 10,
  float64: 11,
  uint32: 12,
  uint64: 13,
  complex64: 14,
  complex128: 15,
  bfloat16: 16,
} as const;
export type OnnxElemType = keyof typeof DATA_TYPE_CODES;

/** The element type for a code read from a file; undefined for codes this table does not name (float8 etc.). */
export function elemTypeName(code: number): OnnxElemType | undefined {
  for (const [name, c] of Object.entries(DATA_TYPE_CODES)) if (c === code) return name as OnnxElemType;
  return undefined;
}

/** A dimension: a fixed size, or a symbolic name such as `'B'` for the batch. */
export type Dim = number | string;

/** An initializer or constant. Only the two types a policy graph needs can be written. */
export type TensorProto =
  | { name: string; dataType: 'float32'; dims: number[]; data: ArrayLike<number> }
  | { name: string; dataType: 'int64'; dims: number[]; data: ArrayLike<number | bigint> };

export interface ValueInfoProto {
  name: string;
  elemType: OnnxElemType;
  shape: Dim[];
}

/** One attribute value; the key says its protobuf type, since a JS number alone cannot tell 1 from 1.0. */
export type AttributeValue =
  | { f: number }
  | { i: number | bigint }
  | { s: string }
  | { floats: number[] }
  | { ints: (number | bigint)[] }
  | { t: TensorProto };

export interface NodeProto {
  opType: string;
  inputs: string[];
  outputs: string[];
  name?: string;
  /** Operator domain; '' (the default) is the standard ONNX operator set. */
  domain?: string;
  attributes?: Record<string, AttributeValue>;
}

export interface GraphProto {
  name: string;
  nodes: NodeProto[];
  initializers: TensorProto[];
  inputs: ValueInfoProto[];
  outputs: ValueInfoProto[];
  docString?: string;
}

export interface OperatorSetId {
  domain: string;
  version: number;
}

export interface ModelProto {
  irVersion: number;
  opsetImports: OperatorSetId[];
  producerName?: string;
  producerVersion?: string;
  modelVersion?: number;
  docString?: string;
  graph: GraphProto;
  /** ModelProto.metadata_props: free-form string pairs, kept in insertion order. */
  metadata?: Record<string, string>;
}

// AttributeProto.AttributeType
const ATTR_FLOAT = 1;
const ATTR_INT = 2;
const ATTR_STRING = 3;
const ATTR_TENSOR = 4;
const ATTR_FLOATS = 6;
const ATTR_INTS = 7;

export function encodeTensor(t: TensorProto): ProtoWriter {
  const w = new ProtoWriter();
  for (const d of t.dims) w.int(1, d);
  w.int(2, DATA_TYPE_CODES[t.dataType]);
  if (t.dataType === 'float32') w.packedFloats(4, t.data);
  else w.packedVarints(7, t.data);
  w.string(8, t.name);
  return w;
}

function encodeAttribute(name: string, v: AttributeValue): ProtoWriter {
  const w = new ProtoWriter().string(1, name);
  let type: number;
  if ('f' in v) {
    w.float(2, v.f);
    type = ATTR_FLOAT;
  } else if ('i' in v) {
    w.int(3, v.i);
    type = ATTR_INT;
  } else if ('s' in v) {
    w.string(4, v.s);
    type = ATTR_STRING;
  } else if ('t' in v) {
    w.message(5, encodeTensor(v.t));
    type = ATTR_TENSOR;
  } else if ('floats' in v) {
    // AttributeProto.floats/ints are not declared packed in onnx.proto, so each value is its own field.
    for (const f of v.floats) w.float(7, f);
    type = ATTR_FLOATS;
  } else {
    for (const i of v.ints) w.int(8, i);
    type = ATTR_INTS;
  }
  return w.int(20, type);
}

function encodeNode(n: NodeProto): ProtoWriter {
  const w = new ProtoWriter();
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  if (n.name !== undefined) w.string(3, n.name);
  w.string(4, n.opType);
  for (const [k, v] of Object.entries(n.attributes ?? {})) w.message(5, encodeAttribute(k, v));
  if (n.domain) w.string(7, n.domain);
  return w;
}

export function encodeValueInfo(v: ValueInfoProto): ProtoWriter {
  const shape = new ProtoWriter();
  for (const d of v.shape) {
    const dim = new ProtoWriter();
    if (typeof d === 'number') dim.int(1, d);
    else dim.string(2, d);
    shape.message(1, dim);
  }
  const tensorType = new ProtoWriter().int(1, DATA_TYPE_CODES[v.elemType]).message(2, shape);
  const type = new ProtoWriter().message(1, tensorType);
  return new ProtoWriter().string(1, v.name).message(2, type);
}

function encodeGraph(g: GraphProto): ProtoWriter {
  const w = new ProtoWriter();
  for (const n of g.nodes) w.message(1, encodeNode(n));
  w.string(2, g.name);
  for (const t of g.initializers) w.message(5, encodeTensor(t));
  if (g.docString !== undefined) w.string(10, g.docString);
  for (const v of g.inputs) w.message(11, encodeValueInfo(v));
  for (const v of g.outputs) w.message(12, encodeValueInfo(v));
  return w;
}

/** The bytes of a `.onnx` file. */
export function encodeModel(m: ModelProto): Uint8Array {
  const w = new ProtoWriter().int(1, m.irVersion);
  if (m.producerName !== undefined) w.string(2, m.producerName);
  if (m.producerVersion !== undefined) w.string(3, m.producerVersion);
  if (m.modelVersion !== undefined) w.int(5, m.modelVersion);
  if (m.docString !== undefined) w.string(6, m.docString);
  w.message(7, encodeGraph(m.graph));
  for (const o of m.opsetImports) w.message(8, new ProtoWriter().string(1, o.domain).int(2, o.version));
  for (const [k, v] of Object.entries(m.metadata ?? {})) {
    w.message(14, new ProtoWriter().string(1, k).string(2, v));
  }
  return w.finish();
}
