/** The adapter's physics plumbing: snapshots restore bit for bit; errors parse MuJoCo's wording. */
import { describe, expect, it } from 'vitest';
import { parseMujocoError, loadMujoco, modelFromXmlString, getState, setState } from '../src/sim/mujoco.ts';
import { makeEnv } from '../src/env/make.ts';

describe('state snapshots', () => {
  it('restore a mid-episode state so the continuation is identical bit for bit', async () => {
    // push, with the hand moving up and away from the cube: the episode cannot end inside the 10 steps.
    const env = await makeEnv('push');
    env.reset({ seed: 4 });
    for (let t = 0; t < 5; t++) env.step([-0.3, 0.2, 0.4, 0]);
    const snap = env.snapshot();
    const a = [];
    for (let t = 0; t < 5; t++) a.push(env.step([-0.1, 0.5, 0.2, 1]).obs);
    env.restore(snap);
    for (let t = 0; t < 5; t++) {
      const o = env.step([-0.1, 0.5, 0.2, 1]).obs;
      expect(Buffer.from(o.buffer)).toEqual(Buffer.from(a[t]!.buffer));
    }
    env.close();
  });

  it('a free-falling body matches the closed form after restore (z = z0 - g t^2 / 2)', async () => {
    const mj = await loadMujoco();
    const m = modelFromXmlString(
      mj,
      '<mujoco><option timestep="0.001" integrator="RK4"/><worldbody><body pos="0 0 10"><freejoint/><geom size="0.1"/></body></worldbody></mujoco>',
    );
    const d = new mj.MjData(m);
    const s0 = getState(mj, m, d);
    for (let i = 0; i < 500; i++) mj.mj_step(m, d);
    expect(d.qpos[2]).toBeCloseTo(10 - 0.5 * 9.81 * 0.5 ** 2, 6);
    setState(mj, m, d, s0);
    expect(d.qpos[2]).toBe(10);
    expect(d.time).toBe(0);
    expect(() => setState(mj, m, d, new Float64Array(3))).toThrow(/needs/);
    d.delete();
    m.delete();
  });
});

describe('parseMujocoError', () => {
  it('reads the element and line from each of MuJoCo wordings', () => {
    expect(
      parseMujocoError(
        "MuJoCo Error: Loading error: XML Error: bad format in attribute 'size'\nElement 'geom', line 3\n",
      ),
    ).toEqual({
      message: "XML Error: bad format in attribute 'size'",
      location: { element: 'geom', line: 3 },
    });
    expect(
      parseMujocoError("MuJoCo Error: Loading error: Error: Error opening file 'a/b.stl'\n").location,
    ).toEqual({
      file: 'a/b.stl',
    });
    expect(
      parseMujocoError("Loading error: Error: mesh 'x' not found in geom 0\nElement name 'g', id 0, line 7")
        .location,
    ).toEqual({ element: "geom 'g'", line: 7 });
  });
});
