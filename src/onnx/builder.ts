/**
 * A small graph builder over model.ts: it names intermediate values, and checks what onnxruntime would
 * otherwise reject later with a less specific message (an input used before it is produced, a name defined twice,
 * initializer data that does not fill its dims, a graph output nothing produces).
 */
import {
  encodeModel,
  IR_VERSION,
  OPSET_VERSION,
  type AttributeValue,
  type Dim,
  type GraphProto,
  type ModelProto,
  type NodeProto,
  type OnnxElemType,
  type TensorProto,
  type ValueInfoProto,
} from './model.ts';
import { InvalidArgument } from '../sim/errors.ts';

export interface ModelOptions {
  producerName?: string;
  producerVersion?: string;
  docString?: string;
}

export class GraphBuilder {
  private readonly nodes: NodeProto[] = [];
  private readonly initializers: TensorProto[] = [];
  private readonly inputs: ValueInfoProto[] = [];
  private readonly outputs: ValueInfoProto[] = [];
  private readonly metadata: Record<string, string> = {};
  private readonly defined = new Set<string>();
  private counter = 0;

  constructor(readonly name: string) {}

  private define(name: string): string {
    if (!name) throw new InvalidArgument('onnx graph', 'ONNX value names must not be empty');
    if (this.defined.has(name))
      throw new InvalidArgument('onnx graph', `ONNX value ${name} is defined twice`);
    this.defined.add(name);
    return name;
  }

  /** A graph input, e.g. `addInput('obs', 'float32', ['B', 17])`. Returns its name. */
  addInput(name: string, elemType: OnnxElemType, shape: Dim[]): string {
    this.inputs.push({ name, elemType, shape });
    return this.define(name);
  }

  /** Declares a graph output; some node must produce `name` before `build()`. */
  addOutput(name: string, elemType: OnnxElemType, shape: Dim[]): void {
    this.outputs.push({ name, elemType, shape });
  }

  /** A float32 constant (weights, biases, scalars with `dims = []`). Returns its name. */
  addInitializer(name: string, data: ArrayLike<number>, dims: number[]): string {
    checkSize(name, data.length, dims);
    this.initializers.push({ name, dataType: 'float32', dims, data: Float32Array.from(data) });
    return this.define(name);
  }

  /** An int64 constant (shapes, axes). Returns its name. */
  addInt64Initializer(name: string, data: ArrayLike<number | bigint>, dims: number[]): string {
    checkSize(name, data.length, dims);
    this.initializers.push({ name, dataType: 'int64', dims, data: Array.from(data) });
    return this.define(name);
  }

  /**
   * Appends a node; nodes must come in an order where every input already exists (ONNX requires topological
   * order). `outputs` defaults to one fresh name. Returns the output names. An input of '' skips an optional
   * input.
   */
  addNode(
    opType: string,
    inputs: string[],
    options: { outputs?: string[]; attributes?: Record<string, AttributeValue>; name?: string } = {},
  ): string[] {
    for (const i of inputs) {
      if (i !== '' && !this.defined.has(i))
        throw new InvalidArgument('onnx graph', `${opType} node input ${i} is not defined yet`);
    }
    const id = this.counter++;
    const outputs = options.outputs ?? [`${opType.toLowerCase()}_${id}`];
    outputs.forEach((o) => this.define(o));
    this.nodes.push({
      opType,
      inputs,
      outputs,
      name: options.name ?? `${opType}_${id}`,
      ...(options.attributes ? { attributes: options.attributes } : {}),
    });
    return outputs;
  }

  /** Adds a ModelProto.metadata_props entry. */
  setMetadata(key: string, value: string): void {
    this.metadata[key] = value;
  }

  build(): GraphProto {
    for (const o of this.outputs) {
      if (!this.defined.has(o.name))
        throw new InvalidArgument('onnx graph', `graph output ${o.name} is not produced by any node`);
    }
    return {
      name: this.name,
      nodes: [...this.nodes],
      initializers: [...this.initializers],
      inputs: [...this.inputs],
      outputs: [...this.outputs],
    };
  }

  /** ModelProto with IR version 8 and the default-domain opset 17. */
  toModel(options: ModelOptions = {}): ModelProto {
    return {
      irVersion: IR_VERSION,
      opsetImports: [{ domain: '', version: OPSET_VERSION }],
      ...options,
      graph: this.build(),
      metadata: { ...this.metadata },
    };
  }

  toBytes(options: ModelOptions = {}): Uint8Array {
    return encodeModel(this.toModel(options));
  }
}

function checkSize(name: string, length: number, dims: number[]): void {
  const size = dims.reduce((a, b) => a * b, 1);
  if (size !== length)
    throw new InvalidArgument(
      'onnx graph',
      `initializer ${name}: ${length} values do not fill dims [${dims.join(', ')}]`,
    );
}
