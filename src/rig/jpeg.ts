/**
 * Baseline JPEG (ITU T.81) in TypeScript, for rig cameras: a decoder so the reward model can read JPEG frames
 * without a native dependency, and an encoder so `rig-sim` and the benchmarks can send them.
 *
 * Decoder scope: sequential DCT with Huffman coding (SOF0, SOF1), 8-bit samples, 1 (grey) or 3 (YCbCr, JFIF)
 * components with any sampling factors in 1..4, restart intervals. Progressive (SOF2), arithmetic-coded,
 * lossless and 12-bit files are refused with a JpegError naming the mode: cameras and their drivers emit
 * baseline JPEG. Chroma is upsampled by replication (libjpeg's "fancy" upsampling smooths it instead, so pixels
 * may differ from libjpeg's by a few levels at colour edges; the IDCT is the exact float one).
 *
 * Encoder: baseline, 4:4:4, the standard luminance and chrominance tables of Annex K scaled by a quality factor
 * the way libjpeg does, and the Annex K Huffman tables.
 */
import { ProgressBridgeError } from '../sim/errors.ts';

/** A JPEG file this decoder cannot read (corrupt, truncated, or a mode it does not implement). */
export class JpegError extends ProgressBridgeError {
  constructor(detail: string) {
    super('INVALID_JPEG', `JPEG: ${detail}`);
  }
}

export interface DecodedJpeg {
  width: number;
  height: number;
  /** RGB uint8, row-major [height, width, 3] (grey files are expanded to RGB). */
  rgb: Uint8Array;
}

/** Zig-zag order: ZIGZAG[k] is the natural (row-major 8x8) index of the k-th coefficient in the file. */
const ZIGZAG = Int32Array.from([
  0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7,
  14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46,
  53, 60, 61, 54, 47, 55, 62, 63,
]);

/** cos((2x + 1) u pi / 16) * C(u) / 2, the separable IDCT basis: COS[x * 8 + u]. */
const COS = (() => {
  const t = new Float64Array(64);
  for (let x = 0; x < 8; x++) {
    for (let u = 0; u < 8; u++) {
      const c = u === 0 ? Math.SQRT1_2 : 1;
      t[x * 8 + u] = (c * Math.cos(((2 * x + 1) * u * Math.PI) / 16)) / 2;
    }
  }
  return t;
})();

/** Codes up to this many bits are decoded with one table lookup. */
const LOOKAHEAD = 9;

interface Huffman {
  /** Indexed by the next LOOKAHEAD bits: (code length << 8) | value, or 0 for longer codes. */
  fast: Uint16Array;
  /** For each code length 1..16: the largest code, the index of its first value, the first code. */
  maxCode: Int32Array;
  valPtr: Int32Array;
  minCode: Int32Array;
  values: Uint8Array;
}

function buildHuffman(counts: Uint8Array, values: Uint8Array): Huffman {
  const maxCode = new Int32Array(18).fill(-1);
  const valPtr = new Int32Array(17);
  const minCode = new Int32Array(17);
  let code = 0;
  let k = 0;
  for (let len = 1; len <= 16; len++) {
    const n = counts[len - 1]!;
    valPtr[len] = k;
    minCode[len] = code;
    code += n;
    k += n;
    maxCode[len] = n > 0 ? code - 1 : -1;
    code <<= 1;
  }
  maxCode[17] = 0x7fffffff;
  const fast = new Uint16Array(1 << LOOKAHEAD);
  let c = 0;
  let v = 0;
  for (let len = 1; len <= LOOKAHEAD; len++) {
    for (let i = 0; i < counts[len - 1]!; i++, c++, v++) {
      const shift = LOOKAHEAD - len;
      for (let j = 0; j < 1 << shift; j++) fast[(c << shift) | j] = (len << 8) | values[v]!;
    }
    c <<= 1;
  }
  return { fast, maxCode, valPtr, minCode, values };
}

interface Component {
  id: number;
  h: number;
  v: number;
  tq: number;
  /** Blocks per line and per column, padded to whole MCUs. */
  bw: number;
  bh: number;
  /** Decoded samples, [bh * 8, bw * 8]. */
  pixels: Uint8Array;
  dcTable: number;
  acTable: number;
  pred: number;
}

class BitReader {
  private bits = 0;
  private nbits = 0;
  /** A marker was hit inside entropy-coded data: the reader feeds zeros until the scan's end is handled. */
  marker = -1;
  constructor(
    private readonly data: Uint8Array,
    public pos: number,
  ) {}

  private fill(): void {
    while (this.nbits <= 24) {
      let byte = 0;
      if (this.marker < 0 && this.pos < this.data.length) {
        byte = this.data[this.pos]!;
        if (byte === 0xff) {
          const next = this.data[this.pos + 1];
          if (next === 0x00) this.pos += 2;
          else {
            this.marker = next ?? 0xd9;
            byte = 0;
          }
        } else {
          this.pos++;
        }
      } else if (this.marker < 0) {
        throw new JpegError('entropy-coded data runs past the end of the file');
      }
      this.bits = (this.bits << 8) | byte;
      this.nbits += 8;
    }
  }

  bit(): number {
    if (this.nbits === 0) this.fill();
    this.nbits--;
    return (this.bits >>> this.nbits) & 1;
  }

  receive(n: number): number {
    if (n === 0) return 0;
    if (this.nbits < n) this.fill();
    this.nbits -= n;
    return (this.bits >>> this.nbits) & ((1 << n) - 1);
  }

  decode(t: Huffman): number {
    if (this.nbits < LOOKAHEAD) this.fill();
    const hit = t.fast[(this.bits >>> (this.nbits - LOOKAHEAD)) & ((1 << LOOKAHEAD) - 1)]!;
    if (hit !== 0) {
      this.nbits -= hit >> 8;
      return hit & 255;
    }
    let code = this.bit();
    let len = 1;
    while (code > t.maxCode[len]!) {
      code = (code << 1) | this.bit();
      len++;
      if (len > 16) throw new JpegError('bad Huffman code');
    }
    const v = t.values[t.valPtr[len]! + code - t.minCode[len]!];
    if (v === undefined) throw new JpegError('bad Huffman code');
    return v;
  }

  /** Byte-aligns at a restart marker and consumes it. */
  restart(): void {
    this.bits = 0;
    this.nbits = 0;
    if (this.marker < 0) {
      // The marker may not have been reached by the bit buffer yet.
      while (this.pos < this.data.length && this.data[this.pos] !== 0xff) this.pos++;
      this.marker = this.data[this.pos + 1] ?? -1;
    }
    if (this.marker < 0xd0 || this.marker > 0xd7) throw new JpegError('expected a restart marker');
    this.pos += 2;
    this.marker = -1;
  }
}

/** Sign-extends a received value of `n` bits (T.81 F.2.2.1 EXTEND). */
function extend(v: number, n: number): number {
  return v < 1 << (n - 1) ? v - (1 << n) + 1 : v;
}

export function decodeJpeg(file: Uint8Array): DecodedJpeg {
  const d = file;
  if (d.length < 4 || d[0] !== 0xff || d[1] !== 0xd8) throw new JpegError('no SOI marker');
  const qt: (Float64Array | undefined)[] = [];
  const dc: (Huffman | undefined)[] = [];
  const ac: (Huffman | undefined)[] = [];
  let comps: Component[] = [];
  let width = 0;
  let height = 0;
  let hmax = 1;
  let vmax = 1;
  let restartInterval = 0;
  let adobeTransform = -1;
  let pos = 2;
  let scanned = false;
  const u16 = (p: number): number => {
    if (p + 1 >= d.length) throw new JpegError('truncated file');
    return (d[p]! << 8) | d[p + 1]!;
  };
  while (pos < d.length) {
    if (d[pos] !== 0xff) throw new JpegError(`expected a marker at byte ${pos}`);
    const marker = d[pos + 1]!;
    pos += 2;
    if (marker === 0xff) {
      pos--;
      continue;
    }
    if (marker === 0xd9) break;
    if (marker >= 0xd0 && marker <= 0xd7) continue;
    const len = u16(pos);
    const end = pos + len;
    if (end > d.length) throw new JpegError(`segment ${marker.toString(16)} runs past the end of the file`);
    let p = pos + 2;
    switch (marker) {
      case 0xdb: // DQT
        while (p < end) {
          const pq = d[p]! >> 4;
          const tq = d[p]! & 15;
          p++;
          const table = new Float64Array(64);
          for (let k = 0; k < 64; k++) {
            table[ZIGZAG[k]!] = pq ? u16(p + 2 * k) : d[p + k]!;
          }
          p += pq ? 128 : 64;
          qt[tq] = table;
        }
        break;
      case 0xc4: // DHT
        while (p < end) {
          const tc = d[p]! >> 4;
          const th = d[p]! & 15;
          const counts = d.subarray(p + 1, p + 17);
          let total = 0;
          for (const c of counts) total += c;
          const values = d.slice(p + 17, p + 17 + total);
          if (values.length !== total) throw new JpegError('truncated Huffman table');
          (tc === 0 ? dc : ac)[th] = buildHuffman(counts, values);
          p += 17 + total;
        }
        break;
      case 0xc0:
      case 0xc1: {
        if (d[p] !== 8) throw new JpegError(`${d[p]}-bit samples are not supported (8-bit only)`);
        height = u16(p + 1);
        width = u16(p + 3);
        const n = d[p + 5]!;
        if (width === 0 || height === 0) throw new JpegError('zero width or height (DNL not supported)');
        if (n !== 1 && n !== 3) throw new JpegError(`${n} components (1 or 3 supported)`);
        comps = [];
        for (let i = 0; i < n; i++) {
          const q = p + 6 + 3 * i;
          const h = d[q + 1]! >> 4;
          const v = d[q + 1]! & 15;
          if (h < 1 || h > 4 || v < 1 || v > 4) throw new JpegError(`sampling factors ${h}x${v}`);
          comps.push({
            id: d[q]!,
            h,
            v,
            tq: d[q + 2]!,
            bw: 0,
            bh: 0,
            pixels: new Uint8Array(0),
            dcTable: 0,
            acTable: 0,
            pred: 0,
          });
        }
        hmax = Math.max(...comps.map((c) => c.h));
        vmax = Math.max(...comps.map((c) => c.v));
        const mcux = Math.ceil(width / (8 * hmax));
        const mcuy = Math.ceil(height / (8 * vmax));
        for (const c of comps) {
          c.bw = mcux * c.h;
          c.bh = mcuy * c.v;
          c.pixels = new Uint8Array(c.bw * 8 * c.bh * 8);
        }
        break;
      }
      case 0xc2:
      case 0xc6:
      case 0xca:
      case 0xce:
        throw new JpegError('progressive JPEG is not supported (baseline only)');
      case 0xc3:
      case 0xc5:
      case 0xc7:
      case 0xc9:
      case 0xcb:
      case 0xcd:
      case 0xcf:
        throw new JpegError(`frame type SOF${marker - 0xc0} is not supported (baseline only)`);
      case 0xdd: // DRI
        restartInterval = u16(p);
        break;
      case 0xee: // APP14 Adobe: the transform flag says whether 3 components are YCbCr or RGB
        if (len >= 12 && String.fromCharCode(...d.subarray(p, p + 5)) === 'Adobe')
          adobeTransform = d[p + 11]!;
        break;
      case 0xda: {
        if (comps.length === 0) throw new JpegError('scan before frame header');
        const ns = d[p]!;
        const scomps: Component[] = [];
        for (let i = 0; i < ns; i++) {
          const id = d[p + 1 + 2 * i]!;
          const c = comps.find((x) => x.id === id);
          if (!c) throw new JpegError(`scan names unknown component ${id}`);
          c.dcTable = d[p + 2 + 2 * i]! >> 4;
          c.acTable = d[p + 2 + 2 * i]! & 15;
          scomps.push(c);
        }
        pos = decodeScan(
          d,
          end,
          scomps,
          comps.length,
          hmax,
          vmax,
          width,
          height,
          restartInterval,
          qt,
          dc,
          ac,
        );
        scanned = true;
        continue;
      }
      default:
        // APPn, COM and the rest carry nothing the pixels depend on.
        break;
    }
    pos = end;
  }
  if (!scanned) throw new JpegError('no image data (no scan)');
  return { width, height, rgb: toRgb(comps, width, height, hmax, vmax, adobeTransform) };
}

function decodeScan(
  d: Uint8Array,
  start: number,
  scomps: Component[],
  ncomps: number,
  hmax: number,
  vmax: number,
  width: number,
  height: number,
  restartInterval: number,
  qt: (Float64Array | undefined)[],
  dcTables: (Huffman | undefined)[],
  acTables: (Huffman | undefined)[],
): number {
  if (scomps.length !== ncomps) throw new JpegError('non-interleaved scans are not supported');
  for (const c of scomps) {
    if (!qt[c.tq]) throw new JpegError(`missing quantisation table ${c.tq}`);
    if (!dcTables[c.dcTable] || !acTables[c.acTable]) throw new JpegError('missing Huffman table');
    c.pred = 0;
  }
  const reader = new BitReader(d, start);
  const coef = new Float64Array(64);
  const tmp = new Float64Array(64);
  const single = scomps.length === 1;
  // A single-component scan has one block per MCU and covers only the component's own (unpadded) blocks.
  const c0 = scomps[0]!;
  const mcux = single ? Math.ceil(Math.ceil((width * c0.h) / hmax) / 8) : Math.ceil(width / (8 * hmax));
  const mcuy = single ? Math.ceil(Math.ceil((height * c0.v) / vmax) / 8) : Math.ceil(height / (8 * vmax));
  const total = mcux * mcuy;
  for (let m = 0; m < total; m++) {
    if (restartInterval > 0 && m > 0 && m % restartInterval === 0) {
      reader.restart();
      for (const c of scomps) c.pred = 0;
    }
    const my = Math.floor(m / mcux);
    const mx = m % mcux;
    for (const c of scomps) {
      const nh = single ? 1 : c.h;
      const nv = single ? 1 : c.v;
      for (let by = 0; by < nv; by++) {
        for (let bx = 0; bx < nh; bx++) {
          decodeBlock(reader, c, dcTables[c.dcTable]!, acTables[c.acTable]!, qt[c.tq]!, coef);
          idctInto(coef, tmp, c, (my * nv + by) * 8, (mx * nh + bx) * 8);
        }
      }
    }
  }
  // Skip to the next marker that is not a restart marker or stuffing.
  let pos = reader.pos;
  while (pos < d.length) {
    if (
      d[pos] === 0xff &&
      d[pos + 1] !== 0 &&
      !(d[pos + 1]! >= 0xd0 && d[pos + 1]! <= 0xd7) &&
      d[pos + 1] !== 0xff
    )
      break;
    pos++;
  }
  return pos;
}

function decodeBlock(
  r: BitReader,
  c: Component,
  dcT: Huffman,
  acT: Huffman,
  q: Float64Array,
  out: Float64Array,
): void {
  out.fill(0);
  const t = r.decode(dcT);
  if (t > 11) throw new JpegError('bad DC magnitude');
  c.pred += t === 0 ? 0 : extend(r.receive(t), t);
  out[0] = c.pred * q[0]!;
  for (let k = 1; k < 64;) {
    const rs = r.decode(acT);
    const s = rs & 15;
    const run = rs >> 4;
    if (s === 0) {
      if (run === 15) {
        k += 16;
        continue;
      }
      break;
    }
    k += run;
    if (k > 63) throw new JpegError('AC coefficients run past the block');
    const z = ZIGZAG[k]!;
    out[z] = extend(r.receive(s), s) * q[z]!;
    k++;
  }
}

/** 2-D IDCT of one block into the component's sample plane at (y0, x0), level-shifted and clamped. */
function idctInto(coef: Float64Array, tmp: Float64Array, c: Component, y0: number, x0: number): void {
  // Rows of coefficients -> horizontal samples, then columns.
  let lastRow = -1;
  for (let v = 0; v < 8; v++) {
    const row = v * 8;
    // Most rows of a quantised block are zero past the first few: skip them, and handle DC-only rows at once.
    let last = -1;
    for (let u = 7; u >= 0; u--) {
      if (coef[row + u] !== 0) {
        last = u;
        break;
      }
    }
    if (last < 0) {
      for (let x = 0; x < 8; x++) tmp[row + x] = 0;
      continue;
    }
    lastRow = v;
    for (let x = 0; x < 8; x++) {
      let s = 0;
      for (let u = 0; u <= last; u++) s += COS[x * 8 + u]! * coef[row + u]!;
      tmp[row + x] = s;
    }
  }
  const stride = c.bw * 8;
  for (let x = 0; x < 8; x++) {
    for (let y = 0; y < 8; y++) {
      let s = 0;
      for (let v = 0; v <= lastRow; v++) s += COS[y * 8 + v]! * tmp[v * 8 + x]!;
      const val = Math.round(s + 128);
      c.pixels[(y0 + y) * stride + x0 + x] = val < 0 ? 0 : val > 255 ? 255 : val;
    }
  }
}

function toRgb(
  comps: Component[],
  width: number,
  height: number,
  hmax: number,
  vmax: number,
  adobeTransform: number,
): Uint8Array {
  const rgb = new Uint8Array(width * height * 3);
  // Per component: the sample-plane offset of every output column and row (replicating subsampled chroma).
  const cols = comps.map((c) => Int32Array.from({ length: width }, (_, x) => Math.floor((x * c.h) / hmax)));
  const rows = comps.map((c) =>
    Int32Array.from({ length: height }, (_, y) => Math.floor((y * c.v) / vmax) * c.bw * 8),
  );

  if (comps.length === 1) {
    const c = comps[0]!;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const g = c.pixels[rows[0]![y]! + cols[0]![x]!]!;
        const o = 3 * (y * width + x);
        rgb[o] = g;
        rgb[o + 1] = g;
        rgb[o + 2] = g;
      }
    }
    return rgb;
  }
  // JFIF is YCbCr; an Adobe marker with transform 0 says the components are RGB as they are.
  const isRgb = adobeTransform === 0;
  const [p0, p1, p2] = comps.map((c) => c.pixels) as [Uint8Array, Uint8Array, Uint8Array];
  const [c0, c1, c2] = cols as [Int32Array, Int32Array, Int32Array];
  const [r0, r1, r2] = rows as [Int32Array, Int32Array, Int32Array];
  const clamp = (v: number): number => (v < 0 ? 0 : v > 255 ? 255 : Math.round(v));
  for (let y = 0; y < height; y++) {
    const o0 = r0[y]!;
    const o1 = r1[y]!;
    const o2 = r2[y]!;
    let o = 3 * y * width;
    for (let x = 0; x < width; x++, o += 3) {
      const Y = p0[o0 + c0[x]!]!;
      const B = p1[o1 + c1[x]!]!;
      const R = p2[o2 + c2[x]!]!;
      if (isRgb) {
        rgb[o] = Y;
        rgb[o + 1] = B;
        rgb[o + 2] = R;
        continue;
      }
      rgb[o] = clamp(Y + 1.402 * (R - 128));
      rgb[o + 1] = clamp(Y - 0.344136 * (B - 128) - 0.714136 * (R - 128));
      rgb[o + 2] = clamp(Y + 1.772 * (B - 128));
    }
  }
  return rgb;
}

// ---------------------------------------------------------------------------------------------------------
// Encoder

const STD_LUMA_Q = [
  16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22,
  29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92, 49, 64, 78, 87, 103,
  121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
];
const STD_CHROMA_Q = [
  17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99,
  99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
  99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
];
// Annex K.3 tables: code counts per length 1..16, then the values.
const DC_LUMA = {
  counts: [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0],
  values: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
};
const DC_CHROMA = {
  counts: [0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0],
  values: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
};
const AC_LUMA = {
  counts: [0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d],
  values: [
    0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07, 0x22,
    0x71, 0x14, 0x32, 0x81, 0x91, 0xa1, 0x08, 0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52, 0xd1, 0xf0, 0x24, 0x33,
    0x62, 0x72, 0x82, 0x09, 0x0a, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x34,
    0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x53, 0x54, 0x55,
    0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x73, 0x74, 0x75, 0x76,
    0x77, 0x78, 0x79, 0x7a, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96,
    0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5,
    0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4,
    0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf1,
    0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa,
  ],
};
const AC_CHROMA = {
  counts: [0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77],
  values: [
    0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61, 0x71, 0x13,
    0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xa1, 0xb1, 0xc1, 0x09, 0x23, 0x33, 0x52, 0xf0, 0x15, 0x62,
    0x72, 0xd1, 0x0a, 0x16, 0x24, 0x34, 0xe1, 0x25, 0xf1, 0x17, 0x18, 0x19, 0x1a, 0x26, 0x27, 0x28, 0x29,
    0x2a, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x53, 0x54,
    0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x73, 0x74, 0x75,
    0x76, 0x77, 0x78, 0x79, 0x7a, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x92, 0x93, 0x94,
    0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3,
    0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2,
    0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea,
    0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa,
  ],
};

interface EncTable {
  code: Uint16Array;
  size: Uint8Array;
}

function encTable(t: { counts: number[]; values: number[] }): EncTable {
  const code = new Uint16Array(256);
  const size = new Uint8Array(256);
  let c = 0;
  let k = 0;
  for (let len = 1; len <= 16; len++) {
    for (let i = 0; i < t.counts[len - 1]!; i++) {
      const v = t.values[k++]!;
      code[v] = c++;
      size[v] = len;
    }
    c <<= 1;
  }
  return { code, size };
}

const ENC = {
  dcL: encTable(DC_LUMA),
  acL: encTable(AC_LUMA),
  dcC: encTable(DC_CHROMA),
  acC: encTable(AC_CHROMA),
};

/** libjpeg's quality scaling of the Annex K tables (quality 1..100, 50 = the tables as printed). */
function scaledTable(base: number[], quality: number): Uint8Array {
  const q = Math.min(100, Math.max(1, Math.round(quality)));
  const scale = q < 50 ? 5000 / q : 200 - 2 * q;
  return Uint8Array.from(base, (b) => Math.min(255, Math.max(1, Math.floor((b * scale + 50) / 100))));
}

class BitWriter {
  private buf: Uint8Array = new Uint8Array(4096);
  private len = 0;
  private acc = 0;
  private n = 0;

  byte(b: number): void {
    if (this.len === this.buf.length) {
      const next = new Uint8Array(this.buf.length * 2);
      next.set(this.buf);
      this.buf = next;
    }
    this.buf[this.len++] = b;
  }

  bytes(bs: ArrayLike<number>): void {
    for (let i = 0; i < bs.length; i++) this.byte(bs[i]!);
  }

  bits(value: number, count: number): void {
    // count <= 16 and n < 8, so acc never holds more than 24 bits.
    this.acc = ((this.acc << count) | (value & ((1 << count) - 1))) >>> 0;
    this.n += count;
    while (this.n >= 8) {
      this.n -= 8;
      const b = (this.acc >>> this.n) & 255;
      this.byte(b);
      // Byte stuffing: 0xFF in entropy-coded data is followed by 0x00.
      if (b === 0xff) this.byte(0);
    }
    this.acc &= (1 << this.n) - 1;
  }

  flush(): void {
    // Pad the last byte with 1 bits, as T.81 asks.
    if (this.n > 0) this.bits((1 << (8 - this.n)) - 1, 8 - this.n);
  }

  result(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

function magnitude(v: number): { size: number; bits: number } {
  const a = Math.abs(v);
  let size = 0;
  while (a >> size) size++;
  return { size, bits: v < 0 ? v + (1 << size) - 1 : v };
}

/** Encodes RGB uint8 [height, width, 3] as a baseline 4:4:4 JFIF JPEG. */
export function encodeJpeg(rgb: Uint8Array, width: number, height: number, quality = 90): Uint8Array {
  if (
    !Number.isInteger(width) ||
    !Number.isInteger(height) ||
    width < 1 ||
    height < 1 ||
    width > 65535 ||
    height > 65535
  ) {
    throw new RangeError(`JPEG size must be integers in [1, 65535], got ${width}x${height}`);
  }
  if (rgb.length !== width * height * 3) {
    throw new RangeError(`RGB ${width}x${height} needs ${width * height * 3} bytes, got ${rgb.length}`);
  }
  const ql = scaledTable(STD_LUMA_Q, quality);
  const qc = scaledTable(STD_CHROMA_Q, quality);
  const w = new BitWriter();
  const segment = (marker: number, body: number[]): void => {
    w.bytes([0xff, marker, (body.length + 2) >> 8, (body.length + 2) & 255]);
    w.bytes(body);
  };
  w.bytes([0xff, 0xd8]);
  segment(0xe0, [0x4a, 0x46, 0x49, 0x46, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0]);
  segment(0xdb, [
    0,
    ...Array.from({ length: 64 }, (_, k) => ql[ZIGZAG[k]!]!),
    1,
    ...Array.from({ length: 64 }, (_, k) => qc[ZIGZAG[k]!]!),
  ]);
  segment(0xc0, [
    8,
    height >> 8,
    height & 255,
    width >> 8,
    width & 255,
    3,
    1,
    0x11,
    0,
    2,
    0x11,
    1,
    3,
    0x11,
    1,
  ]);
  segment(0xc4, [
    0x00,
    ...DC_LUMA.counts,
    ...DC_LUMA.values,
    0x10,
    ...AC_LUMA.counts,
    ...AC_LUMA.values,
    0x01,
    ...DC_CHROMA.counts,
    ...DC_CHROMA.values,
    0x11,
    ...AC_CHROMA.counts,
    ...AC_CHROMA.values,
  ]);
  segment(0xda, [3, 1, 0x00, 2, 0x11, 3, 0x11, 0, 63, 0]);
  const block = new Float64Array(64);
  const tmp = new Float64Array(64);
  const preds = [0, 0, 0];
  const planes = [ql, qc, qc];
  const zz = new Int32Array(64);
  // Colour conversion once, into level-shifted planes padded to whole blocks (edge pixels repeated).
  const pw = Math.ceil(width / 8) * 8;
  const ph = Math.ceil(height / 8) * 8;
  const ycc = [new Float32Array(pw * ph), new Float32Array(pw * ph), new Float32Array(pw * ph)] as const;
  for (let y = 0; y < ph; y++) {
    const sy = Math.min(height - 1, y);
    for (let x = 0; x < pw; x++) {
      const o = 3 * (sy * width + Math.min(width - 1, x));
      const r = rgb[o]!;
      const g = rgb[o + 1]!;
      const b = rgb[o + 2]!;
      const i = y * pw + x;
      ycc[0][i] = 0.299 * r + 0.587 * g + 0.114 * b - 128;
      ycc[1][i] = -0.168736 * r - 0.331264 * g + 0.5 * b;
      ycc[2][i] = 0.5 * r - 0.418688 * g - 0.081312 * b;
    }
  }
  const tables = [
    [ENC.dcL, ENC.acL],
    [ENC.dcC, ENC.acC],
    [ENC.dcC, ENC.acC],
  ] as const;
  for (let by = 0; by < height; by += 8) {
    for (let bx = 0; bx < width; bx += 8) {
      for (let ci = 0; ci < 3; ci++) {
        const plane = ycc[ci]!;
        for (let y = 0; y < 8; y++) {
          const row = (by + y) * pw + bx;
          for (let x = 0; x < 8; x++) block[y * 8 + x] = plane[row + x]!;
        }
        // Forward DCT: the transpose of the IDCT basis.
        for (let y = 0; y < 8; y++) {
          for (let u = 0; u < 8; u++) {
            let s = 0;
            for (let x = 0; x < 8; x++) s += COS[x * 8 + u]! * block[y * 8 + x]!;
            tmp[y * 8 + u] = s;
          }
        }
        const q = planes[ci]!;
        const [dcT, acT] = tables[ci]!;
        for (let u = 0; u < 8; u++) {
          for (let v = 0; v < 8; v++) {
            let s = 0;
            for (let y = 0; y < 8; y++) s += COS[y * 8 + v]! * tmp[y * 8 + u]!;
            block[v * 8 + u] = s;
          }
        }
        for (let k = 0; k < 64; k++) zz[k] = Math.round(block[ZIGZAG[k]!]! / q[ZIGZAG[k]!]!);
        const diff = zz[0]! - preds[ci]!;
        preds[ci] = zz[0]!;
        const m = magnitude(diff);
        w.bits(dcT.code[m.size]!, dcT.size[m.size]!);
        if (m.size) w.bits(m.bits, m.size);
        let run = 0;
        for (let k = 1; k < 64; k++) {
          const v = zz[k]!;
          if (v === 0) {
            run++;
            continue;
          }
          while (run > 15) {
            w.bits(acT.code[0xf0]!, acT.size[0xf0]!);
            run -= 16;
          }
          const mm = magnitude(v);
          const sym = (run << 4) | mm.size;
          w.bits(acT.code[sym]!, acT.size[sym]!);
          w.bits(mm.bits, mm.size);
          run = 0;
        }
        if (run > 0) w.bits(acT.code[0]!, acT.size[0]!);
      }
    }
  }
  w.flush();
  w.bytes([0xff, 0xd9]);
  return w.result();
}
