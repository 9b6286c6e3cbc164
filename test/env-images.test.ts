/** Image observations: produced only when requested, shaped as declared, identical to a direct render. */
import { describe, expect, it } from 'vitest';
import { makeEnv } from '../src/env/make.ts';
import { InvalidArgument, UnknownCamera } from '../src/sim/errors.ts';

describe('image observations', () => {
  it('are absent unless requested', async () => {
    const env = await makeEnv('push');
    expect(env.reset({ seed: 0 }).images).toBeUndefined();
    expect(env.step([0, 0, 0, 0]).images).toBeUndefined();
    expect(env.imageSpace).toBeUndefined();
    env.close();
  });

  it('come as images.<camera> uint8 [size, size, 3] and equal what env.render returns for that state', async () => {
    const env = await makeEnv('push', { images: { cameras: ['front', 'wrist'], size: 64 } });
    expect(Object.keys(env.imageSpace!.spaces)).toEqual(['images.front', 'images.wrist']);
    expect(env.imageSpace!.spaces['images.front']!.shape).toEqual([64, 64, 3]);
    const first = env.reset({ seed: 1 });
    expect(first.images!.front).toHaveLength(64 * 64 * 3);
    const r = env.step([0.5, 0, 0, 1]);
    expect(Buffer.from(r.images!.front!)).toEqual(Buffer.from(env.render('front', 64).rgb));
    expect(Buffer.from(r.images!.wrist!)).toEqual(Buffer.from(env.render('wrist', 64).rgb));
    // The arm moved, so the wrist camera sees something else than at reset.
    expect(Buffer.from(r.images!.wrist!)).not.toEqual(Buffer.from(first.images!.wrist!));
    env.close();
  });

  it('reject unknown cameras and sizes out of range', async () => {
    await expect(makeEnv('push', { images: { cameras: ['top'], size: 64 } })).rejects.toThrow(UnknownCamera);
    await expect(makeEnv('push', { images: { cameras: ['top'], size: 64 } })).rejects.toThrow(
      /cameras are: front, side, wrist/,
    );
    await expect(makeEnv('push', { images: { cameras: ['front'], size: 4 } })).rejects.toThrow(
      InvalidArgument,
    );
    await expect(makeEnv('push', { images: { cameras: [], size: 64 } })).rejects.toThrow(/images.cameras/);
  });
});
