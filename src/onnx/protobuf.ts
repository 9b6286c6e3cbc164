/**
 * Just enough protobuf wire format to write and read ONNX files without a protobuf dependency. Only the parts
 * ONNX uses: varints (wire type 0), fixed32 (5), fixed64 (1, skipped) and length-delimited fields (2).
 * Reference: https://protobuf.dev/programming-guides/encoding/
 */

export const WIRE_VARINT = 0;
export const WIRE_FIXED64 = 1;
export const WIRE_LEN = 2;
export const WIRE_FIXED32 = 5;

/** Builds one message. Nested messages are encoded on their own writer first, then added with `message()`. */
export class ProtoWriter {
  private buf = new Uint8Array(64);
  private len = 0;

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  /**
   * Unsigned LEB128. Negative values are int64 two's complement, always 10 bytes, which is what protobuf does
   * for a negative int32/int64 (ONNX attributes such as `axis = -1`).
   */
  varint(value: number | bigint): this {
    if (typeof value === 'number') {
      if (!Number.isSafeInteger(value)) throw new RangeError(`varint ${value} is not a safe integer`);
      if (value < 0) return this.varint(BigInt(value));
      this.reserve(10);
      // Division, not `>>> 7`: bit operators would cut values above 2^32.
      while (value >= 0x80) {
        this.buf[this.len++] = (value % 0x80) | 0x80;
        value = Math.floor(value / 0x80);
      }
      this.buf[this.len++] = value;
      return this;
    }
    let v = BigInt.asUintN(64, value);
    this.reserve(10);
    while (v >= 0x80n) {
      this.buf[this.len++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.buf[this.len++] = Number(v);
    return this;
  }

  tag(field: number, wire: number): this {
    return this.varint(field * 8 + wire);
  }

  /** A varint field (int32, int64, enum, bool). */
  int(field: number, value: number | bigint): this {
    return this.tag(field, WIRE_VARINT).varint(value);
  }

  /** A `float` field: fixed32, IEEE 754 little-endian. */
  float(field: number, value: number): this {
    this.tag(field, WIRE_FIXED32);
    this.reserve(4);
    new DataView(this.buf.buffer).setFloat32(this.len, value, true);
    this.len += 4;
    return this;
  }

  bytes(field: number, data: Uint8Array): this {
    this.tag(field, WIRE_LEN).varint(data.length);
    this.reserve(data.length);
    this.buf.set(data, this.len);
    this.len += data.length;
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, new TextEncoder().encode(value));
  }

  message(field: number, inner: ProtoWriter): this {
    return this.bytes(field, inner.finish());
  }

  /** A packed `repeated float`: one length-delimited field of little-endian fixed32 values. */
  packedFloats(field: number, values: ArrayLike<number>): this {
    const raw = new Uint8Array(values.length * 4);
    const dv = new DataView(raw.buffer);
    for (let i = 0; i < values.length; i++) dv.setFloat32(i * 4, values[i]!, true);
    return this.bytes(field, raw);
  }

  /** A packed `repeated int64`/`int32`: one length-delimited field of varints. */
  packedVarints(field: number, values: ArrayLike<number | bigint>): this {
    const inner = new ProtoWriter();
    for (let i = 0; i < values.length; i++) inner.varint(values[i]!);
    return this.bytes(field, inner.finish());
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

/** A malformed or truncated message; `offset` is the absolute byte position in the buffer given to the reader. */
export class ProtoDecodeError extends Error {
  readonly offset: number;
  constructor(offset: number, message: string) {
    super(`${message} at byte ${offset}`);
    this.offset = offset;
  }
}

export interface ProtoField {
  field: number;
  wire: number;
  /** Byte offset of the tag, for error messages. */
  at: number;
}

/**
 * Reads one message's fields in order. `sub()` returns a reader bounded to a length-delimited field, so a nested
 * message whose declared length runs past its parent is caught where it happens.
 */
export class ProtoReader {
  pos: number;
  constructor(
    readonly buf: Uint8Array,
    start = 0,
    readonly end = buf.length,
  ) {
    this.pos = start;
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  /** The varint as a number; int64 values beyond 2^53 (never sizes or names in ONNX) lose precision. */
  varint(): number {
    const at = this.pos;
    let result = 0;
    let scale = 1;
    // Seven bytes hold 49 bits, exact in a double; longer ones (negative int64s) take the BigInt path.
    for (let i = 0; i < 7; i++) {
      if (this.pos >= this.end)
        throw new ProtoDecodeError(this.pos, `truncated varint starting at byte ${at},`);
      const b = this.buf[this.pos++]!;
      result += (b & 0x7f) * scale;
      if (b < 0x80) return result;
      scale *= 0x80;
    }
    this.pos = at;
    return Number(this.int64());
  }

  /** Signed int64 exactly; use where negative values matter (dims, attribute ints). */
  int64(): bigint {
    const at = this.pos;
    let result = 0n;
    for (let i = 0n; i < 10n; i++) {
      if (this.pos >= this.end)
        throw new ProtoDecodeError(this.pos, `truncated varint starting at byte ${at},`);
      const b = this.buf[this.pos++]!;
      result |= BigInt(b & 0x7f) << (7n * i);
      if (b < 0x80) return BigInt.asIntN(64, result);
    }
    throw new ProtoDecodeError(at, 'varint longer than 10 bytes');
  }

  /** Next field's tag, or undefined at the end of this message. */
  next(): ProtoField | undefined {
    if (this.done) return undefined;
    const at = this.pos;
    const key = this.varint();
    const field = Math.floor(key / 8);
    const wire = key % 8;
    if (field === 0) throw new ProtoDecodeError(at, 'field number 0');
    return { field, wire, at };
  }

  private take(n: number, what: string): number {
    const start = this.pos;
    if (n > this.end - start) {
      throw new ProtoDecodeError(
        start,
        `${what} needs ${n} bytes but only ${this.end - start} remain (truncated or corrupt)`,
      );
    }
    this.pos += n;
    return start;
  }

  bytes(): Uint8Array {
    const n = this.varint();
    const start = this.take(n, 'length-delimited field');
    return this.buf.subarray(start, start + n);
  }

  string(): string {
    const at = this.pos;
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(this.bytes());
    } catch (err) {
      if (err instanceof ProtoDecodeError) throw err;
      throw new ProtoDecodeError(at, 'string is not valid UTF-8');
    }
  }

  sub(): ProtoReader {
    const n = this.varint();
    const start = this.take(n, 'embedded message');
    return new ProtoReader(this.buf, start, start + n);
  }

  float(): number {
    const start = this.take(4, 'fixed32');
    return new DataView(this.buf.buffer, this.buf.byteOffset).getFloat32(start, true);
  }

  /** Skips a field we do not need; every wire type ONNX can contain is handled. */
  skip(f: ProtoField): void {
    switch (f.wire) {
      case WIRE_VARINT:
        this.varint();
        return;
      case WIRE_FIXED64:
        this.take(8, 'fixed64');
        return;
      case WIRE_LEN:
        this.take(this.varint(), 'length-delimited field');
        return;
      case WIRE_FIXED32:
        this.take(4, 'fixed32');
        return;
      default:
        throw new ProtoDecodeError(f.at, `unsupported wire type ${f.wire} for field ${f.field}`);
    }
  }

  /** A repeated scalar field that may be packed or not: proto2 parsers must accept both. */
  repeatedInt64(f: ProtoField, out: bigint[]): void {
    if (f.wire === WIRE_LEN) {
      const r = this.sub();
      while (!r.done) out.push(r.int64());
    } else if (f.wire === WIRE_VARINT) {
      out.push(this.int64());
    } else {
      throw new ProtoDecodeError(f.at, `field ${f.field} has wire type ${f.wire}, expected a varint`);
    }
  }

  /** Reads a varint field, checking the wire type so corrupt bytes are not read as a plausible number. */
  expectVarint(f: ProtoField): number {
    if (f.wire !== WIRE_VARINT) {
      throw new ProtoDecodeError(f.at, `field ${f.field} has wire type ${f.wire}, expected a varint`);
    }
    return this.varint();
  }

  expectLen(f: ProtoField): void {
    if (f.wire !== WIRE_LEN) {
      throw new ProtoDecodeError(f.at, `field ${f.field} has wire type ${f.wire}, expected length-delimited`);
    }
  }
}
