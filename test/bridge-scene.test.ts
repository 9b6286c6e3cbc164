/** The scene description and pose frames built from real MuJoCo models. */
import { describe, expect, it } from 'vitest';
import { PoseReader, sceneFromModel } from '../src/bridge/scene-source.ts';
import { makeEnv } from '../src/env/make.ts';
import { decodeMessage, encodeMessage, fromTensor, GEOM_TYPES } from '../src/protocol/index.ts';
import { loadMujoco, modelFromXmlString } from '../src/sim/mujoco.ts';

/** Every geom type the viewer draws, an inline mesh and an inline height field, on a free and a mocap body. */
const ALL_GEOMS = `
<mujoco>
  <asset>
    <mesh name="tetra" vertex="0 0 0  0.1 0 0  0 0.1 0  0 0 0.1"/>
    <hfield name="bumps" nrow="3" ncol="4" size="0.5 0.4 0.1 0.05" elevation="0 1 0 1  1 0 1 0  0 0 1 1"/>
    <material name="red" rgba="0.9 0.1 0.1 1" emission="0.2"/>
  </asset>
  <worldbody>
    <geom name="floor" type="plane" size="0 0 0.1"/>
    <geom name="terrain" type="hfield" hfield="bumps" pos="2 0 0"/>
    <camera name="top" pos="0 0 3"/>
    <body name="ball" pos="0 0 1">
      <freejoint/>
      <geom name="s" type="sphere" size="0.1" material="red"/>
      <geom name="c" type="capsule" size="0.05 0.1" pos="0.2 0 0"/>
      <geom name="e" type="ellipsoid" size="0.1 0.05 0.03" pos="0 0.2 0"/>
      <geom name="y" type="cylinder" size="0.05 0.1" pos="0 0 0.2" rgba="0 1 0 0.5"/>
      <geom name="b" type="box" size="0.1 0.05 0.02" pos="0.2 0.2 0"/>
      <geom name="m" type="mesh" mesh="tetra" pos="-0.2 0 0"/>
    </body>
    <body name="target" mocap="true" pos="1 1 0"><geom type="sphere" size="0.02" group="3"/></body>
  </worldbody>
</mujoco>`;

describe('scene source', () => {
  it('describes every geom type with meshes, materials, cameras and a valid wire form', async () => {
    const mj = await loadMujoco();
    const model = modelFromXmlString(mj, ALL_GEOMS);
    const scene = sceneFromModel(mj, model, { name: 'all', envIds: [0, 1] });
    const msg = decodeMessage(encodeMessage({ type: 'scene', sceneId: 1, ...scene }));
    if (msg.type !== 'scene') throw new Error('not a scene');
    expect(msg.bodies.map((b) => b.name)).toEqual(['world', 'ball', 'target']);
    expect(msg.bodies[2]!.mocap).toBe(true);
    expect(new Set(msg.geoms.map((g) => g.geomType))).toEqual(new Set(GEOM_TYPES));
    const byName = Object.fromEntries(msg.geoms.map((g) => [g.name, g]));
    expect(byName.s!.rgba).toEqual([
      expect.closeTo(0.9, 6),
      expect.closeTo(0.1, 6),
      expect.closeTo(0.1, 6),
      1,
    ]);
    expect(byName.y!.rgba[3]).toBeCloseTo(0.5, 6);
    expect(byName.c!.size.slice(0, 2)).toEqual([expect.closeTo(0.05, 9), expect.closeTo(0.1, 9)]);
    const tetra = msg.meshes[byName.m!.mesh]!;
    expect(tetra.vertices.shape).toEqual([4, 3]);
    expect(tetra.faces.shape[1]).toBe(3);
    const terrain = msg.meshes[byName.terrain!.mesh]!;
    expect(terrain.vertices.shape).toEqual([12, 3]);
    expect(terrain.faces.shape).toEqual([2 * 3 * 2, 3]);
    // MuJoCo stores the XML's last elevation row as row 0 (lowest y): [0 0 1 1]. Vertex 2 is column 2 of it,
    // at x = -0.5 + 2/3 and full height (the z size, 0.1); vertex 1 is flat.
    const tv = fromTensor(terrain.vertices);
    expect([tv[6], tv[7], tv[8], tv[5]]).toEqual([
      expect.closeTo(-0.5 + 2 / 3, 6),
      expect.closeTo(-0.4, 6),
      expect.closeTo(0.1, 6),
      0,
    ]);
    expect(msg.materials[0]).toMatchObject({ name: 'red', emission: expect.closeTo(0.2, 6) });
    expect(msg.cameras).toEqual([expect.objectContaining({ name: 'top', body: 0, fovy: 45 })]);
    expect(msg.extent).toBeGreaterThan(0);
  });

  it('reads body poses from MjData as float32 xpos / xquat', async () => {
    const mj = await loadMujoco();
    const model = modelFromXmlString(mj, ALL_GEOMS);
    const data = new mj.MjData(model);
    try {
      for (let i = 0; i < 50; i++) mj.mj_step(model, data);
      const reader = new PoseReader(model.nbody).read(data);
      const xpos = data.xpos as Float64Array;
      const xquat = data.xquat as Float64Array;
      expect(Array.from(reader.pos)).toEqual(Array.from(xpos, Math.fround));
      expect(Array.from(reader.quat)).toEqual(Array.from(xquat, Math.fround));
      expect(reader.pos[3 + 2]).toBeLessThan(1); // the free ball has fallen
    } finally {
      data.delete();
    }
  });

  it('describes the push task scene (the arm, the cube, three cameras)', async () => {
    const env = await makeEnv('push');
    try {
      const scene = sceneFromModel(env.mj, env.model, { name: 'push', instruction: env.task.instruction });
      const bytes = encodeMessage({ type: 'scene', sceneId: 1, ...scene });
      expect(decodeMessage(bytes).type).toBe('scene');
      expect(scene.bodies.length).toBe(env.model.nbody);
      expect(scene.cameras.map((c) => c.name)).toEqual(expect.arrayContaining(['front', 'side', 'wrist']));
      expect(bytes.length).toBeLessThan(256 * 1024);
    } finally {
      env.close();
    }
  });
});
