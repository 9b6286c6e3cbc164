/**
 * `imageEvery`: a vector env renders image observations only at episode steps that are multiples of it (the
 * states a reward model queried every k-th step looks at); in between an env keeps its last frame.
 */
import { describe, expect, it } from 'vitest';
import { VectorEnv } from '../src/vector/vector-env.ts';

const same = (a: Uint8Array, b: Uint8Array): boolean => Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;

describe('vector env imageEvery', () => {
  it('renders at steps 0, 3, 6 and keeps the last frame in between', async () => {
    const venv = await VectorEnv.create({
      task: 'reach',
      numEnvs: 1,
      workers: 1,
      envOptions: { images: { cameras: ['wrist'], size: 32 } },
      imageEvery: 3,
    });
    try {
      const frames = [(await venv.reset({ seed: 2 })).images!.wrist!];
      // Full-speed moves so the wrist camera sees something new every step.
      const action = new Float32Array(venv.actDim).fill(1);
      for (let t = 1; t <= 4; t++) frames.push((await venv.step(action)).images!.wrist!);
      expect(same(frames[1]!, frames[0]!)).toBe(true);
      expect(same(frames[2]!, frames[0]!)).toBe(true);
      expect(same(frames[3]!, frames[0]!)).toBe(false);
      expect(same(frames[4]!, frames[3]!)).toBe(true);
    } finally {
      await venv.close();
    }
  });

  it('rejects a stride outside its limits, naming the field', async () => {
    await expect(VectorEnv.create({ task: 'reach', numEnvs: 1, imageEvery: 0 })).rejects.toThrow(
      /imageEvery/,
    );
  });
});
