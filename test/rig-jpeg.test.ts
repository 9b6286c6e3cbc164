/**
 * The baseline JPEG codec of src/rig/jpeg.ts. The fixtures in test/fixtures/jpeg/ are a 37x29 render of the push
 * scene encoded by libjpeg-turbo 2.1.5's cjpeg (default 4:2:0; `-sample 1x1`; `-sample 2x1 -restart 1 -optimize
 * -quality 60`; `-grayscale`; `-progressive`), and each `.rgb` is what its djpeg made of it with
 * `-nosmooth -dct float -rgb` (replicated chroma and the float IDCT, which is what this decoder does).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Rng } from '../src/env/rng.ts';
import { decodeJpeg, encodeJpeg, JpegError } from '../src/rig/jpeg.ts';
import { checkFrame, decodeFrame } from '../src/rig/frames.ts';

const FIXTURES = new URL('./fixtures/jpeg/', import.meta.url);
const load = (name: string): Uint8Array => new Uint8Array(readFileSync(new URL(name, FIXTURES)));

/** A smooth gradient with a hard-edged square: both what DCT codes well and what it does not. */
function testImage(w: number, h: number): Uint8Array {
  const rgb = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const o = 3 * (y * w + x);
      const inSquare = x > w / 4 && x < (3 * w) / 4 && y > h / 4 && y < (3 * h) / 4;
      rgb[o] = inSquare ? 220 : Math.round((255 * x) / Math.max(1, w - 1));
      rgb[o + 1] = inSquare ? 40 : Math.round((255 * y) / Math.max(1, h - 1));
      rgb[o + 2] = inSquare ? 30 : 128;
    }
  }
  return rgb;
}

function meanAbsDiff(a: Uint8Array, b: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i]! - b[i]!);
  return s / a.length;
}

describe('JPEG decoder', () => {
  it.each(['ycbcr420', 'ycbcr444', 'ycbcr422-restart-optimized', 'grey'])(
    'decodes libjpeg-turbo %s output to the same pixels as djpeg',
    (name) => {
      const img = decodeJpeg(load(`${name}.jpg`));
      expect([img.width, img.height]).toEqual([37, 29]);
      expect(Buffer.from(img.rgb).equals(Buffer.from(load(`${name}.rgb`)))).toBe(true);
    },
  );

  it('refuses progressive files by name, and damaged ones with a JpegError (never anything else)', () => {
    expect(() => decodeJpeg(load('progressive.jpg'))).toThrow(/progressive JPEG is not supported/);
    const good = load('ycbcr420.jpg');
    for (const cut of [2, 20, 200, good.length - 3]) {
      expect(() => decodeJpeg(good.subarray(0, cut))).toThrow(JpegError);
    }
    const rng = new Rng(3);
    let decoded = 0;
    for (let i = 0; i < 300; i++) {
      const bytes = good.slice();
      for (let f = 0; f < 4; f++) bytes[2 + rng.int(bytes.length - 2)] = rng.int(256);
      try {
        decodeJpeg(bytes);
        decoded++;
      } catch (err) {
        expect(err).toBeInstanceOf(JpegError);
      }
    }
    // Flips in the entropy-coded data mostly still decode (to wrong pixels): the point is no crash.
    expect(decoded).toBeGreaterThan(0);
  });
});

describe('JPEG encoder', () => {
  it.each([
    [1, 1],
    [8, 8],
    [9, 17],
    [96, 96],
  ])('round-trips a %ix%i image within JPEG error', (w, h) => {
    const rgb = testImage(w, h);
    const jpg = encodeJpeg(rgb, w, h, 95);
    const back = decodeJpeg(jpg);
    expect([back.width, back.height]).toEqual([w, h]);
    expect(meanAbsDiff(back.rgb, rgb)).toBeLessThan(4);
  });

  it('trades size for error with quality', () => {
    const rgb = testImage(64, 48);
    const lo = encodeJpeg(rgb, 64, 48, 30);
    const hi = encodeJpeg(rgb, 64, 48, 95);
    expect(lo.length).toBeLessThan(hi.length);
    expect(meanAbsDiff(decodeJpeg(lo).rgb, rgb)).toBeGreaterThan(meanAbsDiff(decodeJpeg(hi).rgb, rgb));
  });

  it('makes frames the rig path checks and decodes at their declared size', () => {
    const jpg = encodeJpeg(testImage(40, 30), 40, 30);
    const camera = { name: 'front', width: 40, height: 30, encoding: 'jpeg' as const };
    expect(() => checkFrame(camera, jpg)).not.toThrow();
    expect(() => checkFrame({ ...camera, width: 41 }, jpg)).toThrow(/JPEG is 40x30/);
    expect(decodeFrame(camera, jpg).rgb.length).toBe(40 * 30 * 3);
  });
});
