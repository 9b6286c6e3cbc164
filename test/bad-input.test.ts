/** Misuse and bad files get their own error class and a message that names the problem. */
import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeEnv } from '../src/env/make.ts';
import { resolveTask } from '../src/env/registry.ts';
import {
  EnvClosed,
  FileNotFoundError,
  InvalidAction,
  InvalidArgument,
  InvalidTaskModule,
  ModelLoadError,
  ResetNeeded,
  UnknownTask,
} from '../src/sim/errors.ts';
import { loadMujoco, modelFromFile, modelFromXmlString } from '../src/sim/mujoco.ts';

const dir = mkdtempSync(join(tmpdir(), 'pbridge-bad-'));

describe('model loading', () => {
  it('reports malformed XML with MuJoCo message and line', async () => {
    const mj = await loadMujoco();
    const path = join(dir, 'bad.xml');
    writeFileSync(path, '<mujoco>\n<worldbody>\n<geom type="sphere" size="abc"/>\n</worldbody>\n</mujoco>\n');
    const err = (() => {
      try {
        modelFromFile(mj, path);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(ModelLoadError);
    expect((err as ModelLoadError).code).toBe('MODEL_LOAD');
    expect((err as ModelLoadError).message).toMatch(/bad format in attribute 'size'/);
    expect((err as ModelLoadError).location).toEqual({ element: 'geom', line: 3 });
  });

  it('names a missing mesh file', async () => {
    const mj = await loadMujoco();
    const path = join(dir, 'missing-mesh.xml');
    writeFileSync(
      path,
      '<mujoco><asset><mesh name="m" file="parts/gone.stl"/></asset><worldbody><geom type="mesh" mesh="m"/></worldbody></mujoco>',
    );
    expect(() => modelFromFile(mj, path)).toThrow(ModelLoadError);
    expect(() => modelFromFile(mj, path)).toThrow(/gone\.stl/);
  });

  it('names an unknown element and a missing model file', async () => {
    const mj = await loadMujoco();
    expect(() => modelFromXmlString(mj, '<mujoco><worldbody><blob/></worldbody></mujoco>')).toThrow(
      /unrecognized element.*blob/s,
    );
    expect(() => modelFromFile(mj, join(dir, 'nope.xml'))).toThrow(FileNotFoundError);
  });

  it('loads and steps a robot whose mesh assets live in a meshdir on disk', async () => {
    const mj = await loadMujoco();
    const robot = join(dir, 'mesh-robot');
    mkdirSync(join(robot, 'assets'), { recursive: true });
    // A unit tetrahedron as OBJ: volume 1/6, so with density 1000 its mass must be 1000/6 kg.
    writeFileSync(
      join(robot, 'assets', 'tet.obj'),
      'v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\nf 1 3 2\nf 1 2 4\nf 1 4 3\nf 2 3 4\n',
    );
    writeFileSync(
      join(robot, 'robot.xml'),
      `<mujoco><compiler meshdir="assets"/><asset><mesh name="tet" file="tet.obj"/></asset>
       <worldbody><body name="link"><joint name="j" type="hinge" axis="0 0 1"/><geom type="mesh" mesh="tet" density="1000"/></body></worldbody>
       <actuator><motor joint="j"/></actuator></mujoco>`,
    );
    const model = modelFromFile(mj, join(robot, 'robot.xml'));
    expect(model.nmesh).toBe(1);
    expect(model.body_mass[1]).toBeCloseTo(1000 / 6, 6);
    const data = new mj.MjData(model);
    data.ctrl[0] = 1;
    for (let i = 0; i < 100; i++) mj.mj_step(model, data);
    expect(data.qvel[0]).toBeGreaterThan(0);
    data.delete();
    model.delete();
  });
});

describe('env misuse', () => {
  it('refuses step before reset and after the episode ended', async () => {
    const env = await makeEnv('reach', { episodeSteps: 1 });
    expect(() => env.step([0, 0, 0, 0])).toThrow(ResetNeeded);
    expect(() => env.step([0, 0, 0, 0])).toThrow(/before reset/);
    env.reset({ seed: 0 });
    env.step([0, 0, 0, 0]);
    expect(() => env.step([0, 0, 0, 0])).toThrow(/episode has ended/);
    env.close();
    expect(() => env.reset()).toThrow(EnvClosed);
  });

  it('rejects wrong action shapes and non-finite entries, naming the index', async () => {
    const env = await makeEnv('reach');
    env.reset({ seed: 0 });
    expect(() => env.step([0, 0, 0])).toThrow(InvalidAction);
    expect(() => env.step([0, 0, 0])).toThrow(/3 numbers.*has 4/);
    const nan = (() => {
      try {
        env.step([0, 0, NaN, 0]);
      } catch (e) {
        return e as InvalidAction;
      }
    })();
    expect(nan).toBeInstanceOf(InvalidAction);
    expect(nan!.index).toBe(2);
    expect(nan!.message).toMatch(/action\[2\] is NaN/);
    expect(() => env.step([0, Infinity, 0, 0])).toThrow(/action\[1\] is Infinity/);
    env.close();
  });

  it('clips out-of-range actions: 5 moves exactly as far as 1', async () => {
    const a = await makeEnv('reach');
    const b = await makeEnv('reach');
    a.reset({ seed: 9 });
    b.reset({ seed: 9 });
    const ra = a.step([1, -1, 1, 1]);
    const rb = b.step([5, -7, 100, 3]);
    expect(Buffer.from(rb.obs.buffer)).toEqual(Buffer.from(ra.obs.buffer));
    a.close();
    b.close();
  });

  it('rejects bad seeds and options with the field and the limit', async () => {
    const env = await makeEnv('reach');
    expect(() => env.reset({ seed: -1 })).toThrow(InvalidArgument);
    expect(() => env.reset({ seed: 1.5 })).toThrow(/seed: must be an integer in \[0, 4294967295\]/);
    env.close();
    await expect(makeEnv('reach', { frameSkip: 0 })).rejects.toThrow(/frameSkip: must be an integer/);
    await expect(makeEnv('reach', { actionMode: 'torque' as never })).rejects.toThrow(
      /actionMode: must be one of/,
    );
  });
});

describe('task registry', () => {
  it('lists the valid names for an unknown task', async () => {
    await expect(resolveTask('pushh')).rejects.toThrow(UnknownTask);
    await expect(resolveTask('pushh')).rejects.toThrow(
      /valid names: reach, push, pick-place, drawer-open, stack/,
    );
  });

  it('loads a user task from a file path without registering it', async () => {
    const task = await resolveTask('./test/fixtures/tiny-task.ts');
    expect(task.name).toBe('tiny-touch');
    const env = await makeEnv(task);
    expect(env.obsNames.at(-1)).toBe('ball.y');
    env.close();
  });

  it('rejects a module that exports no task, and a missing file', async () => {
    await expect(resolveTask('./test/fixtures/not-a-task.ts')).rejects.toThrow(InvalidTaskModule);
    await expect(resolveTask('./test/fixtures/missing-task.ts')).rejects.toThrow(FileNotFoundError);
  });
});
