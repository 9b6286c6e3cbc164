import { describe, expect, it, beforeEach, afterAll } from 'vitest';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as zlib from 'node:zlib';
import {
  atomicWriteFile,
  readCheckpoint,
  writeCheckpoint,
  type Checkpoint,
  type CheckpointArray,
} from '../src/util/checkpoint.ts';
import { crc32 } from '../src/util/crc32.ts';
import { CheckpointCorrupt, FileNotFoundError, InvalidArgument } from '../src/sim/errors.ts';

const root = mkdtempSync(join(tmpdir(), 'pbridge-ckpt-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let dir: string;
let n = 0;
beforeEach(() => {
  dir = join(root, `case-${n++}`);
  mkdirSync(dir);
});

/** Bit patterns a float round trip through a JS number could lose: NaN payloads, -0, denormals, Inf. */
function awkwardFloat64(): Float64Array {
  const a = new Float64Array(7);
  const u = new BigUint64Array(a.buffer);
  u[0] = 0x7ff8_0000_dead_beefn; // quiet NaN with payload
  u[1] = 0xfff0_0000_0000_0001n; // signalling NaN, sign bit set
  a[2] = -0;
  a[3] = Infinity;
  a[4] = -Infinity;
  a[5] = 5e-324;
  a[6] = Math.PI;
  return a;
}

function awkwardFloat32(): Float32Array {
  const a = new Float32Array(5);
  const u = new Uint32Array(a.buffer);
  u[0] = 0x7fc0_1234; // quiet NaN with payload
  u[1] = 0xff80_0001; // signalling NaN
  a[2] = -0;
  a[3] = 1e-45;
  a[4] = 1 / 3;
  return a;
}

function sample(): Checkpoint {
  return {
    meta: {
      step: 123_456,
      config: { lr: 3e-4, env: 'push', layers: [64, 64] },
      note: 'ünïcode ✓',
      done: false,
    },
    arrays: {
      'policy/W0': awkwardFloat32(),
      'norm/var': awkwardFloat64(),
      rng: Uint32Array.of(0, 1, 0xffff_ffff, 0xdead_beef, 7),
      counts: Int32Array.of(-1, 0, 2 ** 31 - 1, -(2 ** 31)),
      mask: Uint8Array.of(1, 2, 3),
      empty: new Float32Array(0),
      // A view into a larger buffer: only the view's bytes may be written.
      view: new Float32Array(new Float32Array([9, 1, 2, 3, 9]).buffer, 4, 3),
    },
  };
}

function bytesOf(a: CheckpointArray): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

async function expectCorrupt(path: string, reason: CheckpointCorrupt['reason'], pattern?: RegExp) {
  const err = await readCheckpoint(path).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected ${reason} for ${path}`).toBeInstanceOf(CheckpointCorrupt);
  const c = err as CheckpointCorrupt;
  expect(c.code).toBe('CHECKPOINT_CORRUPT');
  expect(c.reason).toBe(reason);
  expect(c.path).toBe(path);
  expect(c.message).toContain(path);
  if (pattern) expect(c.message).toMatch(pattern);
}

describe('crc32', () => {
  it('matches the standard check value and zlib, also when fed in chunks', () => {
    const check = new TextEncoder().encode('123456789');
    expect(crc32(check)).toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0))).toBe(0);
    const data = new Uint8Array(1000).map((_, i) => (i * 7919) & 0xff);
    expect(crc32(data.subarray(300), crc32(data.subarray(0, 300)))).toBe(crc32(data));
    if ('crc32' in zlib)
      expect(crc32(data)).toBe((zlib as unknown as { crc32(d: Uint8Array): number }).crc32(data));
  });
});

describe('checkpoint round trip', () => {
  it('gives back meta and every array bit-exact and of the same type', async () => {
    const path = join(dir, 'a.ckpt');
    const ck = sample();
    await writeCheckpoint(path, ck);
    const back = await readCheckpoint(path);
    expect(back.meta).toEqual(ck.meta);
    expect(Object.keys(back.arrays).sort()).toEqual(Object.keys(ck.arrays).sort());
    for (const [name, a] of Object.entries(ck.arrays)) {
      const b = back.arrays[name]!;
      expect(b.constructor, name).toBe(a.constructor);
      expect(b.length, name).toBe(a.length);
      expect(bytesOf(b), name).toEqual(bytesOf(a));
    }
    expect(Object.is((back.arrays['norm/var'] as Float64Array)[2], -0)).toBe(true);
    // Every section is 8-aligned in the file, so a reader could map it without copying.
    expect(readFileSync(path).length % 8).toBe(0);
    // No temporary file is left behind.
    expect(readdirSync(dir)).toEqual(['a.ckpt']);
  });

  it('refuses meta that JSON would silently change, and unsupported array types', async () => {
    const path = join(dir, 'b.ckpt');
    await expect(writeCheckpoint(path, { meta: { loss: NaN }, arrays: {} })).rejects.toThrow(InvalidArgument);
    await expect(
      writeCheckpoint(path, { meta: {}, arrays: { x: new Float64Array(1) as unknown as Float32Array } }),
    ).resolves.toBeUndefined();
    await expect(
      writeCheckpoint(path, { meta: {}, arrays: { x: new Int16Array(2) as unknown as Int32Array } }),
    ).rejects.toThrow(/arrays\.x/);
  });
});

describe('damaged checkpoints', () => {
  it('a missing file is FileNotFoundError', async () => {
    const path = join(dir, 'nope.ckpt');
    await expect(readCheckpoint(path)).rejects.toBeInstanceOf(FileNotFoundError);
    await expect(readCheckpoint(path)).rejects.toThrow(path);
  });

  it('a file cut short anywhere is reported as truncated at that byte', async () => {
    const path = join(dir, 'full.ckpt');
    await writeCheckpoint(path, sample());
    const full = readFileSync(path);
    const cut = join(dir, 'cut.ckpt');
    for (const at of [
      0,
      1,
      7,
      8,
      11,
      12,
      31,
      32,
      33,
      40,
      full.length >> 1,
      full.length - 8,
      full.length - 1,
    ]) {
      writeFileSync(cut, full.subarray(0, at));
      await expectCorrupt(cut, 'truncated', new RegExp(`truncated at byte ${at}\\b`));
    }
  });

  it('every single flipped byte is caught, with the reason its position implies', async () => {
    const path = join(dir, 'full.ckpt');
    await writeCheckpoint(path, {
      meta: { step: 1 },
      arrays: { w: Float32Array.of(1, 2, 3), v: awkwardFloat64() },
    });
    const full = readFileSync(path);
    const bad = join(dir, 'bad.ckpt');
    for (let i = 0; i < full.length; i++) {
      const copy = Buffer.from(full);
      copy[i] = copy[i]! ^ (1 << (i % 8));
      writeFileSync(bad, copy);
      const reason = i < 8 ? 'bad_magic' : i < 12 ? 'unsupported_version' : 'checksum_mismatch';
      await expectCorrupt(bad, reason);
    }
  });

  it('trailing bytes and foreign files are rejected', async () => {
    const path = join(dir, 'a.ckpt');
    await writeCheckpoint(path, sample());
    writeFileSync(path, Buffer.concat([readFileSync(path), Buffer.from([0])]));
    await expectCorrupt(path, 'malformed', /unexpected bytes/);
    writeFileSync(path, '{"meta": {}}');
    await expectCorrupt(path, 'bad_magic');
  });
});

describe('atomic writes', () => {
  it('a serializer that throws leaves the previous checkpoint intact', async () => {
    const path = join(dir, 'a.ckpt');
    await writeCheckpoint(path, sample());
    const before = readFileSync(path);
    const meta = {
      toJSON() {
        throw new Error('serializer exploded');
      },
    };
    await expect(writeCheckpoint(path, { meta, arrays: {} })).rejects.toThrow('serializer exploded');
    await expect(writeCheckpoint(path, { meta: { n: 10n } as object, arrays: {} })).rejects.toThrow(
      TypeError,
    );
    expect(readFileSync(path)).toEqual(before);
    expect(readdirSync(dir)).toEqual(['a.ckpt']);
  });

  it('a write that fails halfway through leaves the previous file intact and no temp file', async () => {
    const path = join(dir, 'summary.json');
    await atomicWriteFile(path, '{"old": true}');
    async function* halfThenCrash() {
      yield new Uint8Array(1 << 16).fill(0x41);
      throw new Error('disk full (simulated)');
    }
    await expect(atomicWriteFile(path, halfThenCrash())).rejects.toThrow('disk full');
    expect(readFileSync(path, 'utf8')).toBe('{"old": true}');
    expect(readdirSync(dir)).toEqual(['summary.json']);
    await atomicWriteFile(path, [Uint8Array.of(0x7b), Uint8Array.of(0x7d)]);
    expect(readFileSync(path, 'utf8')).toBe('{}');
  });

  it('a checkpoint into a directory that was removed fails and creates nothing', async () => {
    const gone = join(dir, 'gone');
    mkdirSync(gone);
    rmSync(gone, { recursive: true });
    await expect(writeCheckpoint(join(gone, 'a.ckpt'), sample())).rejects.toThrow(/ENOENT/);
    expect(readdirSync(dir)).toEqual([]);
  });
});
