/**
 * Reads what onnxruntime-node does not expose: onnxruntime-node 1.30 gives input/output names, types and shapes
 * (`session.inputMetadata`), but not ModelProto.metadata_props, producer or opset. This parser reads those
 * straight from the file and skips everything else (weights, nodes) without decoding it, so it is cheap on
 * large models. It is used for policies and for reward models alike.
 */
import { readFile } from 'node:fs/promises';
import { FileNotFoundError, InvalidOnnxModel } from '../sim/errors.ts';
import { elemTypeName, type Dim, type OnnxElemType, type OperatorSetId } from './model.ts';
import { ProtoDecodeError, ProtoReader, WIRE_LEN } from './protobuf.ts';

export interface OnnxValueInfo {
  name: string;
  /** Element type of a tensor; `undefined` for non-tensor values (sequences, maps) or unknown type codes. */
  elemType: OnnxElemType | undefined;
  /** Dimensions: a size, a symbolic name, or null where the file leaves the dimension unknown. Undefined: no shape. */
  shape: (Dim | null)[] | undefined;
}

export interface OnnxModelInfo {
  irVersion: number;
  producerName: string;
  producerVersion: string;
  opsetImports: OperatorSetId[];
  /** ModelProto.metadata_props. */
  metadata: Record<string, string>;
  graphName: string;
  /** Graph inputs a caller must feed: initializers listed as inputs (old exporters do that) are left out, as in onnxruntime. */
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
}

/** Reads metadata_props, opsets and the input/output signature of an `.onnx` file. */
export async function readOnnxMetadata(path: string): Promise<OnnxModelInfo> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new FileNotFoundError(path, 'ONNX model');
    throw err;
  }
  return parseOnnxMetadata(bytes, path);
}

/** As `readOnnxMetadata`, for bytes already in memory; `source` only labels errors. */
export function parseOnnxMetadata(bytes: Uint8Array, source: string): OnnxModelInfo {
  try {
    return parseModel(new ProtoReader(bytes));
  } catch (err) {
    if (err instanceof ProtoDecodeError) {
      throw new InvalidOnnxModel(
        source,
        `protobuf parse failed: ${err.message} (file is ${bytes.length} bytes)`,
      );
    }
    if (err instanceof NotAModelProto) throw new InvalidOnnxModel(source, err.message);
    throw err;
  }
}

class NotAModelProto extends Error {}

function parseModel(r: ProtoReader): OnnxModelInfo {
  const info: OnnxModelInfo = {
    irVersion: 0,
    producerName: '',
    producerVersion: '',
    opsetImports: [],
    metadata: {},
    graphName: '',
    inputs: [],
    outputs: [],
  };
  let sawGraph = false;
  for (let f = r.next(); f; f = r.next()) {
    switch (f.field) {
      case 1:
        info.irVersion = r.expectVarint(f);
        break;
      case 2:
        r.expectLen(f);
        info.producerName = r.string();
        break;
      case 3:
        r.expectLen(f);
        info.producerVersion = r.string();
        break;
      case 7:
        r.expectLen(f);
        parseGraph(r.sub(), info);
        sawGraph = true;
        break;
      case 8:
        r.expectLen(f);
        info.opsetImports.push(parseOpset(r.sub()));
        break;
      case 14: {
        r.expectLen(f);
        const [k, v] = parseStringPair(r.sub());
        info.metadata[k] = v;
        break;
      }
      default:
        r.skip(f);
    }
  }
  if (info.irVersion <= 0) throw new NotAModelProto('no ir_version (field 1): not an ONNX ModelProto');
  if (!sawGraph)
    throw new NotAModelProto('no graph (field 7): not an ONNX ModelProto, or truncated before the graph');
  return info;
}

function parseOpset(r: ProtoReader): OperatorSetId {
  const o: OperatorSetId = { domain: '', version: 0 };
  for (let f = r.next(); f; f = r.next()) {
    if (f.field === 1 && f.wire === WIRE_LEN) o.domain = r.string();
    else if (f.field === 2) o.version = r.expectVarint(f);
    else r.skip(f);
  }
  return o;
}

function parseStringPair(r: ProtoReader): [string, string] {
  let key = '';
  let value = '';
  for (let f = r.next(); f; f = r.next()) {
    if (f.field === 1 && f.wire === WIRE_LEN) key = r.string();
    else if (f.field === 2 && f.wire === WIRE_LEN) value = r.string();
    else r.skip(f);
  }
  return [key, value];
}

function parseGraph(r: ProtoReader, info: OnnxModelInfo): void {
  const initializers = new Set<string>();
  const inputs: OnnxValueInfo[] = [];
  for (let f = r.next(); f; f = r.next()) {
    switch (f.field) {
      case 2:
        r.expectLen(f);
        info.graphName = r.string();
        break;
      case 5:
        r.expectLen(f);
        initializers.add(parseTensorName(r.sub()));
        break;
      case 11:
        r.expectLen(f);
        inputs.push(parseValueInfo(r.sub()));
        break;
      case 12:
        r.expectLen(f);
        info.outputs.push(parseValueInfo(r.sub()));
        break;
      default:
        r.skip(f);
    }
  }
  info.inputs = inputs.filter((i) => !initializers.has(i.name));
}

function parseTensorName(r: ProtoReader): string {
  let name = '';
  for (let f = r.next(); f; f = r.next()) {
    if (f.field === 8 && f.wire === WIRE_LEN) name = r.string();
    else r.skip(f);
  }
  return name;
}

function parseValueInfo(r: ProtoReader): OnnxValueInfo {
  const v: OnnxValueInfo = { name: '', elemType: undefined, shape: undefined };
  for (let f = r.next(); f; f = r.next()) {
    if (f.field === 1 && f.wire === WIRE_LEN) v.name = r.string();
    else if (f.field === 2 && f.wire === WIRE_LEN) parseType(r.sub(), v);
    else r.skip(f);
  }
  return v;
}

/** TypeProto: only `tensor_type` (field 1) carries an element type and shape. */
function parseType(r: ProtoReader, v: OnnxValueInfo): void {
  for (let f = r.next(); f; f = r.next()) {
    if (f.field !== 1 || f.wire !== WIRE_LEN) {
      r.skip(f);
      continue;
    }
    const t = r.sub();
    for (let g = t.next(); g; g = t.next()) {
      if (g.field === 1) v.elemType = elemTypeName(t.expectVarint(g));
      else if (g.field === 2 && g.wire === WIRE_LEN) v.shape = parseShape(t.sub());
      else t.skip(g);
    }
  }
}

function parseShape(r: ProtoReader): (Dim | null)[] {
  const dims: (Dim | null)[] = [];
  for (let f = r.next(); f; f = r.next()) {
    if (f.field !== 1 || f.wire !== WIRE_LEN) {
      r.skip(f);
      continue;
    }
    const d = r.sub();
    let dim: Dim | null = null;
    for (let g = d.next(); g; g = d.next()) {
      if (g.field === 1) dim = d.expectVarint(g);
      else if (g.field === 2 && g.wire === WIRE_LEN) dim = d.string();
      else d.skip(g);
    }
    dims.push(dim);
  }
  return dims;
}
