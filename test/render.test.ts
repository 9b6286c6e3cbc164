/**
 * The renderer against expectations worked out independently of it: pinhole projections computed by hand, depth
 * from MuJoCo's own ray caster (`mj_ray`), MuJoCo's lighting formula, camera poses from MuJoCo's kinematics.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeEnv } from '../src/env/make.ts';
import { decodePng } from '../src/render/png.ts';
import { MAX_IMAGE_SIZE, MIN_IMAGE_SIZE, Renderer, type Frame } from '../src/render/renderer.ts';
import { InvalidArgument, UnknownCamera } from '../src/sim/errors.ts';
import { loadMujoco, modelFromXmlString, type MjData, type MjModel, type Mujoco } from '../src/sim/mujoco.ts';

let mj: Mujoco;
beforeAll(async () => {
  mj = await loadMujoco();
});

/** Compiles `xml` and runs mj_forward; the caller deletes both handles. */
function scene(xml: string): { model: MjModel; data: MjData; renderer: Renderer; close(): void } {
  const model = modelFromXmlString(mj, xml);
  const data = new mj.MjData(model);
  mj.mj_forward(model, data);
  return {
    model,
    data,
    renderer: new Renderer(mj, model),
    close: () => {
      data.delete();
      model.delete();
    },
  };
}

// A headlight with ambient 0.3, diffuse 0.6 and no specular, and no other lights: a surface facing the camera
// is lit 0.3 + 0.6 = 0.9 of its rgba, one seen edge-on 0.3 (MuJoCo's fixed-function lighting model).
const HEADLIGHT =
  '<visual><headlight ambient="0.3 0.3 0.3" diffuse="0.6 0.6 0.6" specular="0 0 0"/></visual>';
const AMBIENT = 0.3;
const LIT = 0.9;

// Camera `oblique` at (0, -2, 1) looking at the origin: its -z is (0, 2, -1)/sqrt(5), so z = (0, -2, 1)/sqrt(5),
// x = (1, 0, 0) and y = z cross x = (0, 1, 2)/sqrt(5) = (0, 0.4472136, 0.8944272).
// Camera `top` at (0.1, 0.05, 1.5) looking straight down: x = +x, y = +y, z = +z (it looks along -z).
const CAMERAS = `
    <camera name="oblique" pos="0 -2 1" xyaxes="1 0 0 0 0.4472136 0.8944272" fovy="45"/>
    <camera name="top" pos="0.1 0.05 1.5" xyaxes="1 0 0 0 1 0" fovy="60"/>`;

const BALL_XML = `
<mujoco model="ball">
  ${HEADLIGHT}
  <worldbody>
    ${CAMERAS}
    <body name="ball" pos="0.12 0.08 0.1">
      <freejoint/>
      <geom name="ball" type="sphere" size="0.03" rgba="1 0 0 1"/>
    </body>
  </worldbody>
</mujoco>`;

const W = 320;
const H = 240;

const isRed = (f: Frame, i: number): boolean =>
  f.rgb[3 * i]! > 60 && f.rgb[3 * i + 1]! < 0.25 * f.rgb[3 * i]! && f.rgb[3 * i + 2]! < 0.25 * f.rgb[3 * i]!;

/** Centroid of the red pixels in pixel coordinates (centres at +0.5), and their count. */
function redCentroid(f: Frame): { u: number; v: number; n: number } {
  let su = 0;
  let sv = 0;
  let n = 0;
  for (let y = 0; y < f.height; y++)
    for (let x = 0; x < f.width; x++)
      if (isRed(f, y * f.width + x)) {
        su += x + 0.5;
        sv += y + 0.5;
        n++;
      }
  return { u: su / n, v: sv / n, n };
}

function pixel(f: Frame, u: number, v: number): [number, number, number] {
  const i = 3 * (Math.floor(v) * f.width + Math.floor(u));
  return [f.rgb[i]!, f.rgb[i + 1]!, f.rgb[i + 2]!];
}

/** Fraction of pixels whose RGB differs between two images of one size. */
function differing(a: Uint8Array, b: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < a.length; i += 3)
    if (a[i] !== b[i] || a[i + 1] !== b[i + 1] || a[i + 2] !== b[i + 2]) n++;
  return n / (a.length / 3);
}

describe('projection', () => {
  it('a small red ball lands where the pinhole model puts it, for an oblique and an axis-aligned camera', () => {
    const s = scene(BALL_XML);
    try {
      // Hand calculation, ball centre P = (0.12, 0.08, 0.1), image 320x240 (u right, v down).
      // oblique: f = (240/2) / tan(45/2 deg) = 120 / 0.41421356 = 289.7056.
      //   d = P - C = (0.12, 2.08, -0.9); camera coords x = d.x_axis = 0.12,
      //   y = 0.4472136 * 2.08 + 0.8944272 * -0.9 = 0.1252198, z = -0.8944272 * 2.08 + 0.4472136 * -0.9 = -2.2629008.
      //   u = 160 + 289.7056 * 0.12 / 2.2629008 = 175.3629; v = 120 - 289.7056 * 0.1252198 / 2.2629008 = 103.9689.
      //   The ball's image radius is 289.7 * 0.03 / 2.263 = 3.8 px.
      // top: f = 120 / tan(30 deg) = 207.8461; d = (0.02, 0.03, -1.4).
      //   u = 160 + 207.8461 * 0.02 / 1.4 = 162.9692; v = 120 - 207.8461 * 0.03 / 1.4 = 115.5462 (radius 4.5 px).
      const expected = {
        oblique: { u: 175.3629, v: 103.9689, depth: 2.2629008 },
        top: { u: 162.9692, v: 115.5462, depth: 1.4 },
      };
      for (const [cam, e] of Object.entries(expected)) {
        const f = s.renderer.render(s.data, cam, W, H);
        const c = redCentroid(f);
        // A disc of radius ~4 px covers ~45-60 pixels; far fewer means the ball is clipped or mis-sized.
        expect(c.n, cam).toBeGreaterThan(25);
        expect(c.n, cam).toBeLessThan(90);
        expect(Math.abs(c.u - e.u), `${cam} u ${c.u} vs ${e.u}`).toBeLessThan(1);
        expect(Math.abs(c.v - e.v), `${cam} v ${c.v} vs ${e.v}`).toBeLessThan(1);
        const p = s.renderer.project(s.data, cam, W, H, [0.12, 0.08, 0.1]);
        expect(p.u).toBeCloseTo(e.u, 3);
        expect(p.v).toBeCloseTo(e.v, 3);
        expect(p.depth).toBeCloseTo(e.depth, 5);
      }
    } finally {
      s.close();
    }
  });

  it('a free camera given by position and look-at point matches the equivalent fixed camera', () => {
    const s = scene(BALL_XML);
    try {
      const fixed = s.renderer.render(s.data, 'oblique', W, H).rgb.slice();
      // The same pose as `oblique`: at (0, -2, 1) looking at the origin with +z up gives x = (1, 0, 0).
      const free = s.renderer.render(s.data, { pos: [0, -2, 1], lookAt: [0, 0, 0], fovy: 45 }, W, H).rgb;
      expect(differing(fixed, free)).toBeLessThan(0.001);
      expect(
        redCentroid(s.renderer.render(s.data, { pos: [0, -2, 1], lookAt: [0, 0, 0] }, W, H)).n,
      ).toBeGreaterThan(25);
    } finally {
      s.close();
    }
  });

  it('keeps the vertical field of view on non-square images (the horizontal one follows the aspect)', () => {
    const s = scene(BALL_XML);
    try {
      // top camera, 160 wide x 240 high: f is still 207.8461 (it depends on the height only), so u shifts to
      // 80 + 207.8461 * 0.02 / 1.4 = 82.9692 and v stays 115.5462.
      const c = redCentroid(s.renderer.render(s.data, 'top', 160, 240));
      expect(Math.abs(c.u - 82.9692)).toBeLessThan(1);
      expect(Math.abs(c.v - 115.5462)).toBeLessThan(1);
    } finally {
      s.close();
    }
  });
});

describe('depth and segmentation', () => {
  const XML = `
<mujoco model="depth">
  ${HEADLIGHT}
  <worldbody>
    ${CAMERAS}
    <geom name="floor" type="plane" size="1.5 1.5 0.1" rgba="0.4 0.4 0.4 1"/>
    <geom name="box" type="box" pos="-0.25 0.1 0.15" size="0.1 0.15 0.15" euler="0 0 0.4" rgba="0.2 0.3 0.9 1"/>
    <geom name="ball" type="sphere" pos="0.25 -0.1 0.2" size="0.2" rgba="0.9 0.2 0.2 1"/>
    <geom name="pole" type="cylinder" pos="0.1 0.4 0.3" size="0.05 0.3" rgba="0.2 0.8 0.2 1"/>
  </worldbody>
</mujoco>`;

  it('depth along the optical axis agrees with mj_ray through pixel centres, and the geom ids match', () => {
    const s = scene(XML);
    const geomid = new mj.IntBuffer(1);
    const normal = new mj.DoubleBuffer(3);
    try {
      const { model, data } = s;
      let compared = 0;
      let idMismatch = 0;
      let rays = 0;
      for (const cam of ['oblique', 'top']) {
        const id = mj.mj_name2id(model, mj.mjtObj.mjOBJ_CAMERA.value, cam);
        const pos = Array.from((data.cam_xpos as Float64Array).subarray(3 * id, 3 * id + 3));
        const R = (data.cam_xmat as Float64Array).subarray(9 * id, 9 * id + 9);
        const fovy = (model.cam_fovy as Float64Array)[id]!;
        const f = H / 2 / Math.tan((fovy * Math.PI) / 360);
        const frame = s.renderer.render(data, cam, W, H, { depth: true, segmentation: true });
        for (let py = 3; py < H; py += 12)
          for (let px = 5; px < W; px += 12) {
            // Camera-frame direction of the pixel centre, then world = R * d (R's columns are the camera axes).
            const dc = [(px + 0.5 - W / 2) / f, -(py + 0.5 - H / 2) / f, -1];
            const norm = Math.hypot(dc[0]!, dc[1]!, dc[2]!);
            const dw = [0, 1, 2].map(
              (r) => (R[3 * r]! * dc[0]! + R[3 * r + 1]! * dc[1]! + R[3 * r + 2]! * dc[2]!) / norm,
            );
            const dist = mj.mj_ray(
              model,
              data,
              pos,
              dw,
              null as unknown as number[],
              true,
              -1,
              geomid,
              normal,
            );
            const hit = (geomid.GetView() as Int32Array)[0]!;
            const i = py * W + px;
            const depth = frame.depth![i]!;
            const seg = frame.segmentation![i]!;
            rays++;
            if (dist < 0) {
              expect(depth, `${cam} (${px}, ${py}) sees nothing by mj_ray`).toBe(Infinity);
              expect(seg).toBe(-1);
              continue;
            }
            // Silhouettes of tessellated curved geoms may disagree by a pixel; count those, compare the rest.
            if (seg !== hit) {
              idMismatch++;
              continue;
            }
            // The ray distance times cos(angle to the axis) = dist / |dc| (dc has unit z).
            const axial = dist / norm;
            const name = mj.mj_id2name(model, mj.mjtObj.mjOBJ_GEOM.value, hit);
            // Flat faces are exact up to float32. Curved geoms are tessellated (12 segments x 8 rings): a facet lies
            // inside the true surface by at most delta = r (1 - cos 15 deg cos 11.25 deg) = 0.053 r and its
            // normal is off the true one by up to ~15 deg, so a ray at incidence theta to the true normal meets
            // the facet up to delta / cos(theta + 15 deg) further on. Grazing rays (cos theta < 0.5) are left out:
            // there a silhouette pixel may hit another geom or nothing.
            const n = normal.GetView() as Float64Array;
            const cosInc = Math.abs(n[0]! * dw[0]! + n[1]! * dw[1]! + n[2]! * dw[2]!);
            const curved = name === 'ball' || name === 'pole';
            if (curved && cosInc < 0.5) continue;
            const radius = name === 'ball' ? 0.2 : 0.05;
            const tilted = Math.cos(Math.acos(cosInc) + (15 * Math.PI) / 180);
            const tol = curved ? (0.053 * radius) / tilted : 1e-4 * axial + 1e-5;
            expect(
              Math.abs(depth - axial),
              `${cam} (${px}, ${py}) on ${name}: ${depth} vs ${axial}`,
            ).toBeLessThan(tol);
            // Facets are inside the surface, never in front of it.
            if (curved) expect(depth).toBeGreaterThan(axial - 1e-4);
            compared++;
          }
      }
      expect(compared).toBeGreaterThan(0.6 * rays);
      expect(idMismatch).toBeLessThan(0.03 * rays);
    } finally {
      geomid.delete();
      normal.delete();
      s.close();
    }
  });

  it('a box in front of a ball hides it: no red pixels, the box id in the segmentation, lit as MuJoCo lights it', () => {
    const s = scene(`
<mujoco model="occlusion">
  ${HEADLIGHT}
  <worldbody>
    ${CAMERAS}
    <geom name="ball" type="sphere" pos="0.12 0.08 0.1" size="0.03" rgba="1 0 0 1"/>
    <geom name="lid" type="box" pos="0.12 0.08 0.5" size="0.08 0.08 0.02" rgba="0.1 0.2 0.9 1"/>
  </worldbody>
</mujoco>`);
    try {
      const lid = mj.mj_name2id(s.model, mj.mjtObj.mjOBJ_GEOM.value, 'lid');
      const f = s.renderer.render(s.data, 'top', W, H, { depth: true, segmentation: true });
      expect(redCentroid(f).n).toBe(0);
      // The ball's projection (162.97, 115.55, worked out in the projection test) is covered by the lid.
      const i = 115 * W + 162;
      expect(f.segmentation![i]).toBe(lid);
      // Lid's top face at z = 0.52, camera at z = 1.5: depth 0.98.
      expect(f.depth![i]).toBeCloseTo(0.98, 4);
      // The top face faces the headlight head-on: colour = rgba * (ambient + diffuse) = rgba * 0.9, so
      // (0.1, 0.2, 0.9) * 0.9 * 255 = (22.95, 45.9, 206.55); any face is between rgba * 0.3 and rgba * 0.9.
      const [r, g, b] = pixel(f, 162.5, 115.5);
      expect(b).toBeGreaterThan(r);
      expect(b).toBeGreaterThan(g);
      expect(b).toBeGreaterThanOrEqual(Math.floor(0.9 * AMBIENT * 255));
      expect(b).toBeLessThanOrEqual(Math.ceil(0.9 * LIT * 255));
      expect(Math.abs(r - 22.95)).toBeLessThan(2);
      expect(Math.abs(g - 45.9)).toBeLessThan(2);
      expect(Math.abs(b - 206.55)).toBeLessThan(2);
      // From the oblique camera the lid is above the ball's line of sight: the ball shows, red and lit between
      // ambient and full, its centre facing the headlight (0.9 * 255 = 229.5).
      const o = s.renderer.render(s.data, 'oblique', W, H, { segmentation: true });
      const ball = mj.mj_name2id(s.model, mj.mjtObj.mjOBJ_GEOM.value, 'ball');
      expect(o.segmentation![103 * W + 175]).toBe(ball);
      const [br, bg, bb] = pixel(o, 175.36, 103.97);
      expect(br).toBeGreaterThan(0.85 * 229.5);
      expect(br).toBeLessThanOrEqual(230);
      expect(bg + bb).toBeLessThan(4);
    } finally {
      s.close();
    }
  });
});

describe('determinism', () => {
  it('the same state gives the same bytes (also from a fresh renderer); a moved ball changes them', () => {
    const s = scene(BALL_XML);
    try {
      const a = s.renderer.render(s.data, 'oblique', 128, 96).rgb.slice();
      const b = s.renderer.render(s.data, 'oblique', 128, 96).rgb.slice();
      const c = new Renderer(mj, s.model).render(s.data, 'oblique', 128, 96).rgb.slice();
      expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);
      expect(Buffer.from(a).equals(Buffer.from(c))).toBe(true);
      // Move the free ball 5 cm in +x: its image moves 289.7 * 0.05 / 2.26 * (96 / 240) ~ 2.6 px.
      (s.data.qpos as Float64Array)[0] = 0.17;
      mj.mj_forward(s.model, s.data);
      const d = s.renderer.render(s.data, 'oblique', 128, 96).rgb;
      expect(Buffer.from(a).equals(Buffer.from(d))).toBe(false);
    } finally {
      s.close();
    }
  });
});

describe('env cameras', () => {
  it('the wrist camera moves with the arm and sees something new; the front camera stays put', async () => {
    const env = await makeEnv('reach');
    try {
      const { mj: m, model, data } = env;
      const renderer = new Renderer(m, model);
      env.reset({ seed: 0 });
      const wrist = renderer.cameraNames.indexOf('wrist');
      const front = renderer.cameraNames.indexOf('front');
      const camPos = (id: number): number[] =>
        Array.from((data.cam_xpos as Float64Array).subarray(3 * id, 3 * id + 3));
      const wrist0 = camPos(wrist);
      const front0 = camPos(front);
      const img0 = renderer.render(data, 'wrist', 96, 96).rgb.slice();
      // ee_delta: 2 cm per step in +x and -y, 8 steps: the hand moves ~20 cm.
      for (let t = 0; t < 8; t++) env.step([1, -1, 0, 1]);
      const wrist1 = camPos(wrist);
      expect(Math.hypot(...wrist1.map((x, k) => x - wrist0[k]!))).toBeGreaterThan(0.1);
      expect(camPos(front)).toEqual(front0);
      const img1 = renderer.render(data, 'wrist', 96, 96).rgb;
      expect(differing(img0, img1)).toBeGreaterThan(0.1);
    } finally {
      env.close();
    }
  });

  it('after an env step the renderer draws the current camera poses, not the previous substep', async () => {
    const env = await makeEnv('push');
    try {
      const renderer = new Renderer(env.mj, env.model);
      // push: lifting the hand cannot finish the episode early (reach would succeed on contact).
      env.reset({ seed: 1 });
      for (let t = 0; t < 3; t++) env.step([0, 1, 1, 1]);
      const afterStep = renderer.render(env.data, 'wrist', 128, 128).rgb.slice();
      // mj_camlight recomputes camera and light poses from the current kinematics.
      env.mj.mj_camlight(env.model, env.data);
      const current = renderer.render(env.data, 'wrist', 128, 128).rgb;
      expect(differing(afterStep, current)).toBe(0);
    } finally {
      env.close();
    }
  });

  it("all of push's cameras render non-empty images of different content", async () => {
    const env = await makeEnv('push');
    try {
      const renderer = new Renderer(env.mj, env.model);
      env.reset({ seed: 0 });
      expect(renderer.cameraNames).toEqual(expect.arrayContaining(['front', 'side', 'wrist']));
      const images = ['front', 'side', 'wrist'].map((c) => renderer.render(env.data, c, 96, 96).rgb.slice());
      for (const img of images) {
        const colours = new Set<number>();
        for (let i = 0; i < img.length; i += 3)
          colours.add((img[i]! << 16) | (img[i + 1]! << 8) | img[i + 2]!);
        // Flat faces under directional lights give few distinct colours, but a blank or single-geom image has
        // one or two: the table's two checker colours, the cube and the arm make more.
        expect(colours.size).toBeGreaterThan(4);
      }
      for (let a = 0; a < 3; a++)
        for (let b = a + 1; b < 3; b++) expect(differing(images[a]!, images[b]!)).toBeGreaterThan(0.3);
    } finally {
      env.close();
    }
  });
});

describe('bad input', () => {
  it('an unknown camera name lists the valid ones; an id out of range is refused too', () => {
    const s = scene(BALL_XML);
    try {
      let err: unknown;
      try {
        s.renderer.render(s.data, 'frnt', 64, 64);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(UnknownCamera);
      expect((err as UnknownCamera).code).toBe('UNKNOWN_CAMERA');
      expect((err as Error).message).toMatch(/frnt/);
      expect((err as Error).message).toMatch(/oblique, top/);
      expect(() => s.renderer.render(s.data, 2, 64, 64)).toThrow(UnknownCamera);
      expect(() => s.renderer.render(s.data, -1, 64, 64)).toThrow(UnknownCamera);
    } finally {
      s.close();
    }
  });

  it('a size outside [16, 1024] or not an integer names the field and the limit', () => {
    const s = scene(BALL_XML);
    try {
      expect([MIN_IMAGE_SIZE, MAX_IMAGE_SIZE]).toEqual([16, 1024]);
      for (const [w, h, field] of [
        [15, 64, 'width'],
        [64, 1025, 'height'],
        [64.5, 64, 'width'],
        [64, 0, 'height'],
      ] as const) {
        let err: unknown;
        try {
          s.renderer.render(s.data, 'top', w, h);
        } catch (e) {
          err = e;
        }
        expect(err, `${w}x${h}`).toBeInstanceOf(InvalidArgument);
        expect((err as InvalidArgument).field).toBe(field);
        expect((err as Error).message).toMatch(/\[16, 1024\]/);
      }
    } finally {
      s.close();
    }
  });

  it('a model without cameras says so for a named camera and suggests a free camera', () => {
    const s = scene('<mujoco><worldbody><geom type="sphere" size="0.1"/></worldbody></mujoco>');
    try {
      expect(s.renderer.cameraNames).toEqual([]);
      expect(() => s.renderer.render(s.data, 'front', 64, 64)).toThrow(/no cameras.*free camera/);
      const f = s.renderer.render(s.data, { pos: [0, -1, 0.5], lookAt: [0, 0, 0] }, 64, 64);
      expect(f.rgb.length).toBe(64 * 64 * 3);
    } finally {
      s.close();
    }
  });
});

describe('pbridge render', () => {
  const run = promisify(execFile);
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'pbridge-render-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  async function pbridge(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    try {
      const { stdout, stderr } = await run(process.execPath, ['bin/pbridge.js', 'render', ...args], {
        timeout: 60_000,
      });
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  }

  it('--camera all writes a strip whose panels are the cameras rendered one by one', async () => {
    const out = join(dir, 'strip.png');
    const r = await pbridge(
      '--env',
      'push',
      '--camera',
      'all',
      '--size',
      '64',
      '--seed',
      '3',
      '--out',
      out,
      '--json',
    );
    expect(r.code).toBe(0);
    const summary = JSON.parse(r.stdout);
    expect(summary.cameras).toEqual(['front', 'side', 'wrist']);
    const png = decodePng(readFileSync(out));
    expect([png.width, png.height, png.channels]).toEqual([192, 64, 3]);
    const env = await makeEnv('push');
    try {
      env.reset({ seed: 3 });
      const renderer = new Renderer(env.mj, env.model);
      summary.cameras.forEach((cam: string, k: number) => {
        const view = renderer.render(env.data, cam, 64, 64).rgb;
        for (let y = 0; y < 64; y++) {
          const row = png.pixels.subarray((y * 192 + 64 * k) * 3, (y * 192 + 64 * (k + 1)) * 3);
          expect(
            Buffer.from(row).equals(Buffer.from(view.subarray(y * 64 * 3, (y + 1) * 64 * 3))),
            `${cam} row ${y}`,
          ).toBe(true);
        }
      });
    } finally {
      env.close();
    }
  });

  it('--steps with --frames writes the reset frame and one per step; --model without cameras uses a free camera', async () => {
    const frames = join(dir, 'seq');
    const r = await pbridge(
      '--env',
      'reach',
      '--camera',
      'wrist',
      '--size',
      '32',
      '--steps',
      '4',
      '--policy',
      'zero',
      '--frames',
      frames,
      '--json',
    );
    expect(r.code).toBe(0);
    expect(readdirSync(frames).sort()).toEqual([
      'frame_0000.png',
      'frame_0001.png',
      'frame_0002.png',
      'frame_0003.png',
      'frame_0004.png',
    ]);
    expect(JSON.parse(r.stdout).frames).toBe(5);
    const xml = join(dir, 'nocam.xml');
    writeFileSync(
      xml,
      '<mujoco><worldbody><geom type="box" size="0.2 0.2 0.2" rgba="0 1 0 1"/></worldbody></mujoco>',
    );
    const out = join(dir, 'nocam.png');
    const m = await pbridge('--model', xml, '--size', '48', '--out', out, '--json');
    expect(m.code).toBe(0);
    expect(JSON.parse(m.stdout).cameras).toEqual(['free']);
    const img = decodePng(readFileSync(out));
    let green = 0;
    for (let i = 0; i < img.pixels.length; i += 3) if (img.pixels[i + 1]! > 2 * img.pixels[i]! + 20) green++;
    // The default free camera frames the model: the box fills a good part of the image, not a speck or all of it.
    expect(green).toBeGreaterThan(0.05 * 48 * 48);
    expect(green).toBeLessThan(0.9 * 48 * 48);
  });

  it('reports bad cameras and sizes with their codes', async () => {
    const cam = await pbridge('--env', 'push', '--camera', 'nope', '--json');
    expect(cam.code).toBe(2);
    expect(JSON.parse(cam.stdout).error.code).toBe('UNKNOWN_CAMERA');
    expect(JSON.parse(cam.stdout).error.message).toMatch(/front, side, wrist/);
    const size = await pbridge('--env', 'push', '--size', '8');
    expect(size.code).toBe(2);
    expect(size.stderr).toMatch(/--size: must be an integer in \[16, 1024\], got "8"/);
  });
});
