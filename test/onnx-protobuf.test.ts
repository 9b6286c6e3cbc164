import { describe, expect, it } from 'vitest';
import { ProtoReader, ProtoWriter } from '../src/onnx/protobuf.ts';
import { encodeModel, encodeTensor, encodeValueInfo } from '../src/onnx/model.ts';
import { GraphBuilder } from '../src/onnx/builder.ts';
import { parseOnnxMetadata } from '../src/onnx/reader.ts';
import { InvalidArgument, InvalidOnnxModel } from '../src/sim/errors.ts';

const hex = (b: Uint8Array): string =>
  Buffer.from(b)
    .toString('hex')
    .replace(/(..)(?!$)/g, '$1 ');
const varint = (v: number | bigint): string => hex(new ProtoWriter().varint(v).finish());

describe('protobuf writer, against bytes worked out by hand', () => {
  it('varints', () => {
    expect(varint(0)).toBe('00');
    expect(varint(1)).toBe('01');
    expect(varint(127)).toBe('7f');
    expect(varint(128)).toBe('80 01');
    // 300 = 0b10_0101100: low 7 bits 0101100 (0x2c) with the continuation bit -> 0xac, then 0b10 -> 0x02.
    expect(varint(300)).toBe('ac 02');
    expect(varint(2 ** 32)).toBe('80 80 80 80 10');
    // 53 one-bits: seven full groups of 7 (ff x7) and 4 bits left (0f).
    expect(varint(2 ** 53 - 1)).toBe('ff ff ff ff ff ff ff 0f');
    // Negative int64: 64-bit two's complement, always 10 bytes.
    expect(varint(-1)).toBe('ff ff ff ff ff ff ff ff ff 01');
    expect(varint(-2n)).toBe('fe ff ff ff ff ff ff ff ff 01');
  });

  it('tags and scalar fields', () => {
    // The protobuf docs' own example: field 1 = 150 -> 08 96 01.
    expect(hex(new ProtoWriter().int(1, 150).finish())).toBe('08 96 01');
    // Field 2, wire type 2 -> key 0x12; length 7; ASCII.
    expect(hex(new ProtoWriter().string(2, 'testing').finish())).toBe('12 07 74 65 73 74 69 6e 67');
    // Field 2, wire type 5 -> key 0x15; 1.0f = 0x3f800000 little-endian.
    expect(hex(new ProtoWriter().float(2, 1).finish())).toBe('15 00 00 80 3f');
    // Packed floats, field 4 -> key 0x22; 8 bytes; 1.0f, -2.0f = 0xc0000000.
    expect(hex(new ProtoWriter().packedFloats(4, [1, -2]).finish())).toBe('22 08 00 00 80 3f 00 00 00 c0');
    // Packed varints, field 7 -> key 0x3a; 1 and 300 take 3 bytes.
    expect(hex(new ProtoWriter().packedVarints(7, [1, 300]).finish())).toBe('3a 03 01 ac 02');
  });

  it('TensorProto: dims (1), data_type (2), float_data (4, packed), name (8)', () => {
    const t = encodeTensor({ name: 'c', dataType: 'float32', dims: [2], data: [1, 2] });
    expect(hex(t.finish())).toBe('08 02 10 01 22 08 00 00 80 3f 00 00 00 40 42 01 63');
  });

  it("ValueInfoProto with a symbolic and a fixed dim: x float32 ['B', 3]", () => {
    // Dimension{dim_param 'B'} = 12 01 42; Dimension{dim_value 3} = 08 03
    // TensorShapeProto = 0a 03 <12 01 42> 0a 02 <08 03>                 (9 bytes)
    // TypeProto.Tensor = 08 01 (elem_type float) 12 09 <shape>           (13 bytes)
    // TypeProto        = 0a 0d <tensor>                                   (15 bytes)
    // ValueInfoProto   = 0a 01 78 ('x') 12 0f <type>
    const v = encodeValueInfo({ name: 'x', elemType: 'float32', shape: ['B', 3] });
    expect(hex(v.finish())).toBe('0a 01 78 12 0f 0a 0d 08 01 12 09 0a 03 12 01 42 0a 02 08 03');
  });

  it('ModelProto: ir_version, graph, opset_import, metadata_props in field order', () => {
    const bytes = encodeModel({
      irVersion: 8,
      opsetImports: [{ domain: '', version: 17 }],
      graph: { name: 'g', nodes: [], initializers: [], inputs: [], outputs: [] },
      metadata: { k: 'v' },
    });
    // 08 08 | graph (7): 3a 03 <12 01 67> | opset (8): 42 04 <0a 00 10 11> | metadata (14): 72 06 <0a 01 6b 12 01 76>
    expect(hex(bytes)).toBe('08 08 3a 03 12 01 67 42 04 0a 00 10 11 72 06 0a 01 6b 12 01 76');
  });

  it('node attributes carry their AttributeType (field 20)', () => {
    const g = new GraphBuilder('g');
    g.addInput('a', 'float32', [1]);
    g.addNode('Gemm', ['a', 'a'], { outputs: ['y'], attributes: { transB: { i: 1 } }, name: 'n' });
    g.addOutput('y', 'float32', [1]);
    const node = encodeModel({ ...g.toModel(), metadata: {} });
    // AttributeProto{name 'transB', i 1, type INT(2)} = 0a 06 'transB' 18 01 a0 01 02
    expect(hex(node)).toContain('2a 0d 0a 06 74 72 61 6e 73 42 18 01 a0 01 02');
  });
});

describe('protobuf reader', () => {
  it('reads back what the writer wrote, negative int64 included', () => {
    const w = new ProtoWriter().int(1, 300).int(2, -5).string(3, 'héllo').float(4, 0.5);
    w.packedVarints(5, [1, -1, 2 ** 40]);
    const r = new ProtoReader(w.finish());
    const seen: unknown[] = [];
    for (let f = r.next(); f; f = r.next()) {
      if (f.field === 1) seen.push(r.varint());
      else if (f.field === 2) seen.push(r.int64());
      else if (f.field === 3) seen.push(r.string());
      else if (f.field === 4) seen.push(r.float());
      else {
        const out: bigint[] = [];
        r.repeatedInt64(f, out);
        seen.push(out);
      }
    }
    expect(seen).toEqual([300, -5n, 'héllo', 0.5, [1n, -1n, 2n ** 40n]]);
  });

  it('a length that runs past the end names the byte', () => {
    const bytes = new ProtoWriter().string(2, 'testing').finish().subarray(0, 5);
    const r = new ProtoReader(bytes);
    const f = r.next()!;
    expect(f.field).toBe(2);
    expect(() => r.bytes()).toThrow(/needs 7 bytes but only 3 remain .* at byte 2/);
    expect(() => new ProtoReader(Uint8Array.of(0x96, 0x80)).varint()).toThrow(/truncated varint/);
  });

  it('parseOnnxMetadata rejects bytes that are not a ModelProto', () => {
    expect(() => parseOnnxMetadata(new TextEncoder().encode('hello world, not onnx'), 'x.onnx')).toThrow(
      InvalidOnnxModel,
    );
    expect(() => parseOnnxMetadata(new ProtoWriter().int(1, 8).finish(), 'x.onnx')).toThrow(/no graph/);
  });
});

describe('graph builder', () => {
  it('catches use before definition, duplicate names and bad initializer sizes', () => {
    const g = new GraphBuilder('g');
    g.addInput('x', 'float32', ['B', 2]);
    expect(() => g.addNode('Relu', ['y'])).toThrow(/input y is not defined/);
    expect(() => g.addInitializer('x', [1], [1])).toThrow(/defined twice/);
    expect(() => g.addInitializer('w', [1, 2, 3], [2, 2])).toThrow(InvalidArgument);
    g.addOutput('out', 'float32', ['B', 2]);
    expect(() => g.build()).toThrow(/out is not produced/);
  });
});
