/** PNG writer and reader against the PNG specification's byte layout and hand-built files. */
import { inflateSync } from 'node:zlib';
import * as zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { crc32, decodePng, encodePng } from '../src/render/png.ts';

function noiseImage(width: number, height: number, seed: number): Uint8Array {
  const out = new Uint8Array(width * height * 3);
  let s = seed >>> 0;
  for (let i = 0; i < out.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s >>> 24;
  }
  return out;
}

describe('crc32', () => {
  it('matches the standard check values', () => {
    // "123456789" -> 0xCBF43926 is the catalogued check value of CRC-32/ISO-HDLC, the CRC PNG uses.
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
    // An IEND chunk's CRC (over the 4 type bytes only) is AE 42 60 82 in every PNG file ever written.
    expect(crc32(new TextEncoder().encode('IEND'))).toBe(0xae426082);
    expect(crc32(new Uint8Array(0))).toBe(0);
  });

  it('agrees with zlib on random data where node provides zlib.crc32', () => {
    const zcrc = (zlib as unknown as { crc32?: (b: Uint8Array) => number }).crc32;
    if (!zcrc) return;
    for (const n of [1, 7, 256, 10_000]) {
      const bytes = noiseImage(n, 1, n).subarray(0, n);
      expect(crc32(bytes)).toBe(zcrc(bytes));
    }
  });
});

describe('encodePng', () => {
  it('writes the signature, an IHDR laid out as the spec says, IDAT and IEND', () => {
    const png = encodePng(noiseImage(5, 3, 1), 5, 3);
    // PNG spec 5.2: 137 'P' 'N' 'G' CR LF SUB LF.
    expect([...png.subarray(0, 8)]).toEqual([137, 80, 78, 71, 13, 10, 26, 10]);
    // IHDR (spec 11.2.2): length 13, "IHDR", width 5, height 3 (big-endian u32), depth 8, colour type 2
    // (truecolour), compression 0, filter 0, interlace 0.
    expect([...png.subarray(8, 33)]).toEqual([
      0,
      0,
      0,
      13,
      0x49,
      0x48,
      0x44,
      0x52,
      0,
      0,
      0,
      5,
      0,
      0,
      0,
      3,
      8,
      2,
      0,
      0,
      0,
      // followed by the CRC over type + data, checked below
      ...png.subarray(29, 33),
    ]);
    expect(png.readUInt32BE(29)).toBe(crc32(png.subarray(12, 29)));
    // The last 12 bytes are always the empty IEND chunk: length 0, "IEND", CRC AE 42 60 82.
    expect([...png.subarray(png.length - 12)]).toEqual([
      0, 0, 0, 0, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
    ]);
    expect(png.toString('latin1', 37, 41)).toBe('IDAT');
  });

  it('with filter none, IDAT inflates to each row prefixed by a 0 filter byte', () => {
    const rgb = noiseImage(4, 2, 7);
    const png = encodePng(rgb, 4, 2, { filter: 'none' });
    const len = png.readUInt32BE(33);
    const raw = inflateSync(png.subarray(41, 41 + len));
    expect([...raw]).toEqual([0, ...rgb.subarray(0, 12), 0, ...rgb.subarray(12, 24)]);
  });

  it('round-trips through decodePng at odd sizes, with both filter modes', () => {
    for (const [w, h] of [
      [1, 1],
      [3, 5],
      [17, 16],
      [224, 224],
    ] as const) {
      const rgb = noiseImage(w, h, w * 31 + h);
      for (const filter of ['none', 'adaptive'] as const) {
        const d = decodePng(encodePng(rgb, w, h, { filter }));
        expect(d.width).toBe(w);
        expect(d.height).toBe(h);
        expect(d.channels).toBe(3);
        expect(Buffer.from(d.pixels).equals(Buffer.from(rgb))).toBe(true);
      }
    }
  });

  it('adaptive filtering makes smooth images smaller and uses the non-trivial filters', () => {
    const w = 128;
    const h = 128;
    const rgb = new Uint8Array(w * h * 3);
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        const i = (y * w + x) * 3;
        rgb[i] = x * 2;
        rgb[i + 1] = y * 2;
        rgb[i + 2] = (x + y) & 0xff;
      }
    const plain = encodePng(rgb, w, h, { filter: 'none' });
    const adaptive = encodePng(rgb, w, h);
    expect(adaptive.length).toBeLessThan(plain.length / 2);
    const raw = inflateSync(adaptive.subarray(41, 41 + adaptive.readUInt32BE(33)));
    const types = new Set<number>();
    for (let y = 0; y < h; y++) types.add(raw[y * (w * 3 + 1)]!);
    expect([...types].some((t) => t !== 0)).toBe(true);
    expect(Buffer.from(decodePng(adaptive).pixels).equals(Buffer.from(rgb))).toBe(true);
  });

  it('rejects a buffer of the wrong length or a bad size', () => {
    expect(() => encodePng(new Uint8Array(10), 2, 2)).toThrow(/needs 12/);
    expect(() => encodePng(new Uint8Array(0), 0, 0)).toThrow(/positive integers/);
    expect(() => encodePng(new Uint8Array(3), 1.5, 2)).toThrow(/positive integers/);
  });
});

describe('decodePng', () => {
  /** A PNG assembled byte by byte with a stored (uncompressed) deflate block: nothing from png.ts involved. */
  function handMadePng(): Buffer {
    // 2x2 RGB, row 0 filter None: red, green; row 1 filter Up (2): residuals added to the row above.
    const scanlines = [0, 255, 0, 0, 0, 255, 0, 2, 0, 0, 255, 0, 1, 1];
    // Row 1 decodes to (255, 0, 255) and (0, 0, 1) after adding row 0 mod 256... spelled out per byte:
    // [0+255, 0+0, 255+0] = [255, 0, 255]; [0+0, 255+1, 0+1] = [0, 0 (256 mod 256), 1].
    const adler = (() => {
      let a = 1;
      let b = 0;
      for (const x of scanlines) {
        a = (a + x) % 65521;
        b = (b + a) % 65521;
      }
      return ((b << 16) | a) >>> 0;
    })();
    const n = scanlines.length;
    // zlib header 78 01, then one final stored block: BFINAL=1 BTYPE=00, LEN, NLEN (little-endian), data, Adler-32.
    const zdata = Buffer.from([
      0x78,
      0x01,
      0x01,
      n & 0xff,
      n >> 8,
      ~n & 0xff,
      (~n >> 8) & 0xff,
      ...scanlines,
      adler >>> 24,
      (adler >>> 16) & 0xff,
      (adler >>> 8) & 0xff,
      adler & 0xff,
    ]);
    const chunkOf = (type: string, data: Buffer): Buffer => {
      const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
      const len = Buffer.alloc(4);
      len.writeUInt32BE(data.length);
      const crc = Buffer.alloc(4);
      crc.writeUInt32BE(crc32(body));
      return Buffer.concat([len, body, crc]);
    };
    return Buffer.concat([
      Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]),
      chunkOf('IHDR', Buffer.from([0, 0, 0, 2, 0, 0, 0, 2, 8, 2, 0, 0, 0])),
      chunkOf('IDAT', zdata),
      chunkOf('IEND', Buffer.alloc(0)),
    ]);
  }

  it('decodes a hand-assembled file, undoing the Up filter', () => {
    const d = decodePng(handMadePng());
    expect([d.width, d.height, d.channels]).toEqual([2, 2, 3]);
    expect([...d.pixels]).toEqual([255, 0, 0, 0, 255, 0, 255, 0, 255, 0, 0, 1]);
  });

  it('rejects a corrupted chunk, a bad signature and a truncated file', () => {
    const png = encodePng(noiseImage(8, 8, 3), 8, 8);
    const flipped = Buffer.from(png);
    flipped[45]! ^= 0x01;
    expect(() => decodePng(flipped)).toThrow(/IDAT: bad CRC/);
    const notPng = Buffer.from(png);
    notPng[1] = 0x51;
    expect(() => decodePng(notPng)).toThrow(/signature/);
    expect(() => decodePng(png.subarray(0, png.length - 12))).toThrow(/IEND/);
  });
});
