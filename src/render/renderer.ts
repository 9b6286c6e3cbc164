/**
 * Headless camera rendering for reward models: RGB (and optionally depth and per-pixel geom ids) of any named
 * MuJoCo camera or a free camera, on the CPU, deterministic to the byte.
 *
 * Technique, chosen by benchmark (BENCHMARKS.md, rendering section): a z-buffered triangle rasteriser in
 * TypeScript fed by the model's geoms. Every geom becomes a small triangle mesh once per model (geometry.ts); a
 * frame then transforms each visible geom's vertices into the camera frame with one 3x4 matrix, lights them per
 * vertex (Lambert: MuJoCo's headlight plus the model's lights, ambient terms), clips at the near plane and fills
 * triangles with incremental edge functions. The alternative, MuJoCo's own ray casting (`mj_multiRay`: one
 * ray per pixel, depth, geom id and normal back), is measured beside it by `npm run bench` on the same states: at
 * 128x128 on the push scene it delivered about 250 frames/s per core before any shading, against 1,000-1,800
 * finished RGB frames for the rasteriser (BENCHMARKS.md, section 4). Ray casting also samples no textures and
 * needs 3 x W x H ray directions marshalled across the WASM boundary per call. The hot loop allocates nothing:
 * per-vertex scratch and frame buffers are sized once and reused.
 *
 * Conventions are MuJoCo's: a camera looks along its local -z with +y up and +x right; fixed cameras take their
 * pose from `data.cam_xpos` / `data.cam_xmat` and their vertical field of view from `model.cam_fovy`; the focal
 * length in pixels is (height / 2) / tan(fovy / 2). Images are row-major [height, width, 3], row 0 at the top.
 * Geom colour is the geom's rgba, or its material's when the geom keeps the default rgba; planes sample their
 * material's texture (nearest texel, repeated `texrepeat` times). Geoms with alpha < 1 are blended after the
 * opaque ones without writing depth. Groups 0-2 are drawn by default, as in MuJoCo's viewer.
 */
import { InvalidArgument, UnknownCamera } from '../sim/errors.ts';
import type { MjData, MjModel, Mujoco } from '../sim/mujoco.ts';
import { namesOf } from '../sim/mujoco.ts';
import { GEOM, geomMesh, type GeomMesh } from './geometry.ts';

export interface FreeCamera {
  pos: readonly [number, number, number];
  lookAt: readonly [number, number, number];
  /** Vertical field of view in degrees (default 45). */
  fovy?: number;
  /** World direction that appears up in the image (default +z). */
  up?: readonly [number, number, number];
}

/** A camera name, a camera id, or a free camera. */
export type CameraSpec = string | number | FreeCamera;

export interface RenderOptions {
  depth?: boolean;
  segmentation?: boolean;
  /** Geom groups drawn (default 0, 1, 2 like MuJoCo's viewer). */
  groups?: readonly number[];
}

export interface Frame {
  width: number;
  height: number;
  /** RGB uint8, row-major [height, width, 3], row 0 at the top of the image. */
  rgb: Uint8Array;
  /** Distance along the optical axis (metres) per pixel; Infinity where nothing is hit. Only with `depth`. */
  depth?: Float32Array;
  /** Geom id per pixel, -1 for background. Only with `segmentation`. */
  segmentation?: Int32Array;
}

export const MIN_IMAGE_SIZE = 16;
export const MAX_IMAGE_SIZE = 1024;

/** Near clipping distance (metres): closer than any camera in our scenes sits to a surface it sees. */
const NEAR = 0.005;
/** Background colour where no geom is hit. */
const BACKGROUND = [24, 26, 32] as const;
const DEFAULT_GROUPS = [0, 1, 2];
/** A geom's rgba equal to MuJoCo's default means "use the material's colour". */
const DEFAULT_RGBA = [0.5, 0.5, 0.5, 1];
/** mjtTexRole index of the RGB texture in mat_texid. */
const TEXROLE_RGB = 1;
const NTEXROLE = 10;
/** Most lights a frame evaluates (headlight included). */
const MAX_LIGHTS = 9;

interface Buffers {
  frame: Frame;
  /** 1 / depth per pixel (larger is closer); 0 is "nothing yet". */
  zinv: Float32Array;
  /** A background-coloured image, copied over rgb at the start of each frame (a memcpy, not a loop). */
  background: Uint8Array;
  /** Depth output, allocated the first time depth is asked for at this size. */
  depthStore: Float32Array;
  seg: Int32Array;
}

interface CameraPose {
  pos: Float64Array;
  /** Camera-to-world rotation, row-major: columns are the camera axes in world coordinates. */
  rot: Float64Array;
  fovy: number;
}

export class Renderer {
  readonly cameraNames: readonly string[];
  private readonly meshes: (GeomMesh | undefined)[];
  // Static per-geom drawing data, copied out of the model once: reading the bindings' getters per geom per frame
  // costs more than drawing small geoms, and copies cannot go stale when the WASM heap grows.
  /** rgba per geom (the material's where the geom keeps the default). */
  private readonly colour: Float32Array;
  /** Texture of planes with a textured material: texel offset (-1: none), width, height, channels. */
  private readonly texture: Int32Array;
  /** Texture mapping of those planes: repeats in u and v, plane half-sizes in x and y. */
  private readonly texMap: Float32Array;
  private readonly texData: Uint8Array;
  private readonly rbound: Float64Array;
  private readonly group: Int32Array;
  // This frame's geom poses (views taken once per render call; nothing allocates on the heap meanwhile).
  private gpos: Float64Array = new Float64Array(0);
  private gmat: Float64Array = new Float64Array(0);
  private readonly buffers = new Map<number, Buffers>();
  // Per-vertex scratch for the geom being drawn: camera-space position, shade, texture coordinates.
  private readonly vx: Float64Array;
  private readonly vy: Float64Array;
  private readonly vz: Float64Array;
  private readonly vs: Float64Array;
  private readonly vu: Float64Array;
  private readonly vv: Float64Array;
  // Projected vertices in front of the near plane: pixel x, y, 1 / depth, and texture coordinates / depth.
  private readonly sx: Float64Array;
  private readonly sy: Float64Array;
  private readonly siz: Float64Array;
  private readonly su: Float64Array;
  private readonly sv: Float64Array;
  // Clipped polygon scratch (a triangle clipped by one plane has at most 4 vertices). Sized past V8's 64-byte
  // limit for typed arrays stored inside the object: `fill` then sees one kind of array from both paths, where
  // mixing in-object and external backing stores made V8 replace it with slower generic code.
  private readonly cx = new Float64Array(16);
  private readonly cy = new Float64Array(16);
  private readonly cz = new Float64Array(16);
  private readonly cs = new Float64Array(16);
  private readonly cu = new Float64Array(16);
  private readonly cv = new Float64Array(16);
  private readonly tri = new TriangleSetup();
  private readonly pose: CameraPose = { pos: new Float64Array(3), rot: new Float64Array(9), fovy: 45.5 };
  private readonly lightDir = new Float64Array(3 * MAX_LIGHTS);
  private readonly lightDiffuse = new Float64Array(MAX_LIGHTS);
  private readonly lightPoint = new Uint8Array(MAX_LIGHTS);
  private readonly lightPos = new Float64Array(3 * MAX_LIGHTS);
  private readonly localLight = new Float64Array(3 * MAX_LIGHTS);
  private nLights = 0;
  // Colour and light fields start as non-integers: V8 then stores them as doubles from the start instead of
  // changing their representation later, which throws away the optimised rasteriser mid-run.
  private ambient = 0.5;
  // Current triangle's colour and texture, set per geom.
  private r = 0.5;
  private g = 0.5;
  private b = 0.5;
  private a = 0.5;
  private texAdr = -1;
  private texW = 0;
  private texH = 0;
  private texC = 3;
  private segId = -1;

  constructor(
    mj: Mujoco,
    private readonly model: MjModel,
  ) {
    this.cameraNames = namesOf(mj, model, 'camera');
    this.meshes = [];
    let maxVerts = 3;
    for (let g = 0; g < model.ngeom; g++) {
      const m = geomMesh(model, g);
      this.meshes.push(m);
      if (m) maxVerts = Math.max(maxVerts, m.vertices);
    }
    const ng = model.ngeom;
    this.colour = new Float32Array(4 * ng);
    this.texture = new Int32Array(4 * ng).fill(-1);
    this.texMap = new Float32Array(4 * ng);
    this.texData = Uint8Array.from(model.tex_data as Uint8Array);
    this.rbound = Float64Array.from(model.geom_rbound as Float64Array);
    this.group = Int32Array.from(model.geom_group as Int32Array);
    for (let g = 0; g < ng; g++) this.staticGeom(g);
    this.vx = new Float64Array(maxVerts);
    this.vy = new Float64Array(maxVerts);
    this.vz = new Float64Array(maxVerts);
    this.vs = new Float64Array(maxVerts);
    this.vu = new Float64Array(maxVerts);
    this.vv = new Float64Array(maxVerts);
    this.sx = new Float64Array(maxVerts);
    this.sy = new Float64Array(maxVerts);
    this.siz = new Float64Array(maxVerts);
    this.su = new Float64Array(maxVerts);
    this.sv = new Float64Array(maxVerts);
  }

  /** Renders `camera` for the current kinematics of `data`. The returned frame is reused by the next call. */
  render(
    data: MjData,
    camera: CameraSpec,
    width: number,
    height: number,
    options: RenderOptions = {},
  ): Frame {
    checkSize('width', width);
    checkSize('height', height);
    this.resolveCamera(data, camera);
    const buf = this.buffersFor(width, height, options);
    this.clear(buf);
    this.setupLights(data);
    const groups = options.groups ?? DEFAULT_GROUPS;
    this.gpos = data.geom_xpos as Float64Array;
    this.gmat = data.geom_xmat as Float64Array;
    const colour = this.colour;
    for (let pass = 0; pass < 2; pass++) {
      for (let geom = 0; geom < this.meshes.length; geom++) {
        const mesh = this.meshes[geom];
        if (!mesh || !groups.includes(this.group[geom]!)) continue;
        const alpha = colour[4 * geom + 3]!;
        if (alpha <= 0 || (pass === 0) !== alpha >= 1) continue;
        this.setColour(geom);
        this.drawGeom(geom, mesh, buf, width, height);
      }
    }
    this.finish(buf, options);
    return buf.frame;
  }

  /** Pinhole projection of a world point: pixel coordinates (u right, v down, centres at +0.5) and depth. */
  project(
    data: MjData,
    camera: CameraSpec,
    width: number,
    height: number,
    world: readonly [number, number, number],
  ): { u: number; v: number; depth: number } {
    this.resolveCamera(data, camera);
    const { pos, rot } = this.pose;
    const dx = world[0] - pos[0]!;
    const dy = world[1] - pos[1]!;
    const dz = world[2] - pos[2]!;
    const xc = rot[0]! * dx + rot[3]! * dy + rot[6]! * dz;
    const yc = rot[1]! * dx + rot[4]! * dy + rot[7]! * dz;
    const zc = rot[2]! * dx + rot[5]! * dy + rot[8]! * dz;
    const f = focal(height, this.pose.fovy);
    return { u: width / 2 + (f * xc) / -zc, v: height / 2 - (f * yc) / -zc, depth: -zc };
  }

  private resolveCamera(data: MjData, camera: CameraSpec): void {
    const { pos, rot } = this.pose;
    if (typeof camera === 'object') {
      const up = camera.up ?? [0, 0, 1];
      let fx = camera.lookAt[0] - camera.pos[0];
      let fy = camera.lookAt[1] - camera.pos[1];
      let fz = camera.lookAt[2] - camera.pos[2];
      const fl = Math.hypot(fx, fy, fz);
      if (!(fl > 0)) throw new InvalidArgument('camera.lookAt', 'must differ from camera.pos');
      fx /= fl;
      fy /= fl;
      fz /= fl;
      let rx = fy * up[2] - fz * up[1];
      let ry = fz * up[0] - fx * up[2];
      let rz = fx * up[1] - fy * up[0];
      const rl = Math.hypot(rx, ry, rz);
      if (!(rl > 0)) throw new InvalidArgument('camera.up', 'must not be parallel to the viewing direction');
      rx /= rl;
      ry /= rl;
      rz /= rl;
      // Camera axes: x = right, y = right x forward... as columns of the camera-to-world rotation.
      const ux = ry * fz - rz * fy;
      const uy = rz * fx - rx * fz;
      const uz = rx * fy - ry * fx;
      rot.set([rx, ux, -fx, ry, uy, -fy, rz, uz, -fz]);
      pos.set(camera.pos);
      const fovy = camera.fovy ?? 45;
      if (!(fovy > 0 && fovy < 180))
        throw new InvalidArgument('camera.fovy', `must be in (0, 180) degrees, got ${fovy}`);
      this.pose.fovy = fovy;
      return;
    }
    const id = typeof camera === 'number' ? camera : this.cameraNames.indexOf(camera);
    if (!Number.isInteger(id) || id < 0 || id >= this.cameraNames.length) {
      throw new UnknownCamera(typeof camera === 'number' ? `#${camera}` : `"${camera}"`, this.cameraNames);
    }
    const xpos = data.cam_xpos as Float64Array;
    const xmat = data.cam_xmat as Float64Array;
    for (let k = 0; k < 3; k++) pos[k] = xpos[3 * id + k]!;
    for (let k = 0; k < 9; k++) rot[k] = xmat[9 * id + k]!;
    this.pose.fovy = (this.model.cam_fovy as Float64Array)[id]!;
  }

  private buffersFor(width: number, height: number, options: RenderOptions): Buffers {
    const key = width * (MAX_IMAGE_SIZE + 1) + height;
    let buf = this.buffers.get(key);
    if (!buf) {
      const n = width * height;
      const background = new Uint8Array(3 * n);
      for (let i = 0; i < background.length; i += 3) background.set(BACKGROUND, i);
      buf = {
        // Every frame object has the same properties in the same order, and they are never deleted: the
        // rasteriser's hot functions then see one object shape for every size (deleting made them megamorphic
        // and cost 2-3x after the first size drawn).
        frame: { width, height, rgb: new Uint8Array(3 * n), depth: undefined, segmentation: undefined },
        depthStore: new Float32Array(0),
        zinv: new Float32Array(n),
        seg: new Int32Array(n),
        background,
      };
      this.buffers.set(key, buf);
    }
    const n = width * height;
    if (options.depth && buf.depthStore.length !== n) buf.depthStore = new Float32Array(n);
    buf.frame.depth = options.depth ? buf.depthStore : undefined;
    buf.frame.segmentation = options.segmentation ? buf.seg : undefined;
    return buf;
  }

  private clear(buf: Buffers): void {
    buf.frame.rgb.set(buf.background);
    buf.zinv.fill(0);
    buf.seg.fill(-1);
  }

  private finish(buf: Buffers, options: RenderOptions): void {
    if (!options.depth) return;
    const depth = buf.frame.depth!;
    const zinv = buf.zinv;
    for (let i = 0; i < zinv.length; i++) depth[i] = zinv[i]! > 0 ? 1 / zinv[i]! : Infinity;
  }

  /** World-frame light directions (toward the light) and intensities for this frame. */
  private setupLights(data: MjData): void {
    const model = this.model;
    const vis = model.vis.headlight;
    const mean = (v: ArrayLike<number>, i = 0): number => (v[i]! + v[i + 1]! + v[i + 2]!) / 3;
    this.ambient = vis.active ? mean(vis.ambient as Float32Array) : 0;
    let n = 0;
    const rot = this.pose.rot;
    if (vis.active) {
      // The headlight shines from the camera along its optical axis: surfaces facing the camera are lit.
      this.lightDir[0] = rot[2]!;
      this.lightDir[1] = rot[5]!;
      this.lightDir[2] = rot[8]!;
      this.lightDiffuse[0] = mean(vis.diffuse as Float32Array);
      this.lightPoint[0] = 0;
      n = 1;
    }
    const nlight = model.nlight;
    const type = model.light_type as Int32Array;
    const diffuse = model.light_diffuse as Float32Array;
    const ambient = model.light_ambient as Float32Array;
    const xdir = data.light_xdir as Float64Array;
    const xpos = data.light_xpos as Float64Array;
    for (let i = 0; i < nlight && n < MAX_LIGHTS; i++, n++) {
      this.ambient += mean(ambient, 3 * i);
      this.lightDiffuse[n] = mean(diffuse, 3 * i);
      // mjLIGHT_DIRECTIONAL = 1: parallel rays along light_xdir. Others (spot, point) light from their position.
      const directional = type[i] === 1;
      this.lightPoint[n] = directional ? 0 : 1;
      for (let k = 0; k < 3; k++) {
        this.lightDir[3 * n + k] = -xdir[3 * i + k]!;
        this.lightPos[3 * n + k] = xpos[3 * i + k]!;
      }
    }
    this.nLights = n;
  }

  /** Fills the static colour and texture tables for geom g. */
  private staticGeom(g: number): void {
    const model = this.model;
    const rgba = model.geom_rgba as Float32Array;
    const mat = (model.geom_matid as Int32Array)[g]!;
    let src: Float32Array = rgba;
    let o = 4 * g;
    const isDefault =
      rgba[o] === DEFAULT_RGBA[0] &&
      rgba[o + 1] === DEFAULT_RGBA[1] &&
      rgba[o + 2] === DEFAULT_RGBA[2] &&
      rgba[o + 3] === DEFAULT_RGBA[3];
    if (mat >= 0) {
      if (isDefault) {
        src = model.mat_rgba as Float32Array;
        o = 4 * mat;
      }
      const tex = (model.mat_texid as Int32Array)[NTEXROLE * mat + TEXROLE_RGB]!;
      if (tex >= 0 && (model.geom_type as Int32Array)[g] === GEOM.PLANE) {
        this.texture[4 * g] = (model.tex_adr as Int32Array)[tex]!;
        this.texture[4 * g + 1] = (model.tex_width as Int32Array)[tex]!;
        this.texture[4 * g + 2] = (model.tex_height as Int32Array)[tex]!;
        this.texture[4 * g + 3] = (model.tex_nchannel as Int32Array)[tex]!;
        const rep = model.mat_texrepeat as Float32Array;
        const size = model.geom_size as Float64Array;
        this.texMap[4 * g] = rep[2 * mat]!;
        this.texMap[4 * g + 1] = rep[2 * mat + 1]!;
        this.texMap[4 * g + 2] = size[3 * g]! > 0 ? size[3 * g]! : 1;
        this.texMap[4 * g + 3] = size[3 * g + 1]! > 0 ? size[3 * g + 1]! : 1;
      }
    }
    for (let k = 0; k < 4; k++) this.colour[4 * g + k] = src[o + k]!;
  }

  private setColour(geom: number): void {
    const c = this.colour;
    this.r = c[4 * geom]!;
    this.g = c[4 * geom + 1]!;
    this.b = c[4 * geom + 2]!;
    this.a = c[4 * geom + 3]!;
    this.texAdr = this.texture[4 * geom]!;
    this.texW = this.texture[4 * geom + 1]!;
    this.texH = this.texture[4 * geom + 2]!;
    this.texC = this.texture[4 * geom + 3]!;
    this.segId = geom;
  }

  private drawGeom(geom: number, mesh: GeomMesh, buf: Buffers, width: number, height: number): void {
    const gpos = this.gpos;
    const gmat = this.gmat;
    const { pos: cpos, rot: R } = this.pose;
    const p0 = gpos[3 * geom]! - cpos[0]!;
    const p1 = gpos[3 * geom + 1]! - cpos[1]!;
    const p2 = gpos[3 * geom + 2]! - cpos[2]!;
    // Camera-space centre; skip geoms entirely behind the near plane (planes have rbound 0: never skipped).
    const tz = R[2]! * p0 + R[5]! * p1 + R[8]! * p2;
    const rbound = this.rbound[geom]!;
    if (rbound > 0 && tz - rbound > -NEAR) return;
    const tx = R[0]! * p0 + R[3]! * p1 + R[6]! * p2;
    const ty = R[1]! * p0 + R[4]! * p1 + R[7]! * p2;
    if (rbound > 0) {
      // Bounding sphere entirely outside a side of the view frustum (slopes are half-extent / focal length).
      const f = focal(height, this.pose.fovy);
      const sx = width / 2 / f;
      const sy = height / 2 / f;
      const depth = -tz;
      if (Math.abs(tx) - rbound * Math.hypot(1, sx) > depth * sx) return;
      if (Math.abs(ty) - rbound * Math.hypot(1, sy) > depth * sy) return;
    }
    // M = R^T G: geom-local to camera.
    const G = 9 * geom;
    let m00 = 0,
      m01 = 0,
      m02 = 0,
      m10 = 0,
      m11 = 0,
      m12 = 0,
      m20 = 0,
      m21 = 0,
      m22 = 0;
    for (let k = 0; k < 3; k++) {
      const g0 = gmat[G + 3 * k]!;
      const g1 = gmat[G + 3 * k + 1]!;
      const g2 = gmat[G + 3 * k + 2]!;
      const r0 = R[3 * k]!;
      const r1 = R[3 * k + 1]!;
      const r2 = R[3 * k + 2]!;
      m00 += r0 * g0;
      m01 += r0 * g1;
      m02 += r0 * g2;
      m10 += r1 * g0;
      m11 += r1 * g1;
      m12 += r1 * g2;
      m20 += r2 * g0;
      m21 += r2 * g1;
      m22 += r2 * g2;
    }
    // Lights into the geom's local frame (G^T l), so vertex normals need no transform.
    const nl = this.nLights;
    const ll = this.localLight;
    for (let i = 0; i < nl; i++) {
      let lx = this.lightDir[3 * i]!;
      let ly = this.lightDir[3 * i + 1]!;
      let lz = this.lightDir[3 * i + 2]!;
      if (this.lightPoint[i]) {
        lx = this.lightPos[3 * i]! - gpos[3 * geom]!;
        ly = this.lightPos[3 * i + 1]! - gpos[3 * geom + 1]!;
        lz = this.lightPos[3 * i + 2]! - gpos[3 * geom + 2]!;
        const l = Math.hypot(lx, ly, lz) || 1;
        lx /= l;
        ly /= l;
        lz /= l;
      }
      ll[3 * i] = gmat[G]! * lx + gmat[G + 3]! * ly + gmat[G + 6]! * lz;
      ll[3 * i + 1] = gmat[G + 1]! * lx + gmat[G + 4]! * ly + gmat[G + 7]! * lz;
      ll[3 * i + 2] = gmat[G + 2]! * lx + gmat[G + 5]! * ly + gmat[G + 8]! * lz;
    }
    const P = mesh.positions;
    const Nn = mesh.normals;
    const nv = mesh.vertices;
    const { vx, vy, vz, vs, vu, vv, sx, sy, siz, su, sv } = this;
    const f = focal(height, this.pose.fovy);
    const hw = width / 2;
    const hh = height / 2;
    const ambient = this.ambient;
    const diffuse = this.lightDiffuse;
    const textured = this.texAdr >= 0;
    const repU = this.texMap[4 * geom]!;
    const repV = this.texMap[4 * geom + 1]!;
    const sizeX = this.texMap[4 * geom + 2]!;
    const sizeY = this.texMap[4 * geom + 3]!;
    for (let i = 0; i < nv; i++) {
      const x = P[3 * i]!;
      const y = P[3 * i + 1]!;
      const z = P[3 * i + 2]!;
      vx[i] = m00 * x + m01 * y + m02 * z + tx;
      vy[i] = m10 * x + m11 * y + m12 * z + ty;
      vz[i] = m20 * x + m21 * y + m22 * z + tz;
      const nx = Nn[3 * i]!;
      const ny = Nn[3 * i + 1]!;
      const nz = Nn[3 * i + 2]!;
      let s = ambient;
      for (let k = 0; k < nl; k++) {
        const d = nx * ll[3 * k]! + ny * ll[3 * k + 1]! + nz * ll[3 * k + 2]!;
        if (d > 0) s += diffuse[k]! * d;
      }
      vs[i] = s > 1 ? 1 : s;
      if (textured) {
        // Texture repeated texrepeat times over the plane's extent, as MuJoCo maps a 2-D texture on a plane.
        vu[i] = (x / (2 * sizeX) + 0.5) * repU;
        vv[i] = (y / (2 * sizeY) + 0.5) * repV;
      }
      const cz = vz[i]!;
      if (cz < -NEAR) {
        const iz = -1 / cz;
        sx[i] = hw + f * vx[i]! * iz;
        sy[i] = hh - f * vy[i]! * iz;
        siz[i] = iz;
        su[i] = vu[i]! * iz;
        sv[i] = vv[i]! * iz;
      }
    }
    const idx = mesh.indices;
    for (let t = 0; t < idx.length; t += 3) {
      const i0 = idx[t]!;
      const i1 = idx[t + 1]!;
      const i2 = idx[t + 2]!;
      const lim = -NEAR;
      if (vz[i0]! < lim && vz[i1]! < lim && vz[i2]! < lim) {
        this.fill(sx, sy, siz, vs, su, sv, i0, i1, i2, buf, width, height, textured);
      } else {
        this.clipAndFill(i0, i1, i2, buf, width, height, f, textured);
      }
    }
  }

  /** Clips a triangle that crosses the near plane, projects the pieces and fills them. */
  private clipAndFill(
    i0: number,
    i1: number,
    i2: number,
    buf: Buffers,
    width: number,
    height: number,
    f: number,
    textured: boolean,
  ): void {
    const { vx, vy, vz, vs, vu, vv, cx, cy, cz, cs, cu, cv } = this;
    const lim = -NEAR;
    let n = 0;
    // Sutherland-Hodgman against z = -NEAR, attributes interpolated in camera space.
    for (let k = 0; k < 3; k++) {
      const a = k === 0 ? i0 : k === 1 ? i1 : i2;
      const b = k === 0 ? i1 : k === 1 ? i2 : i0;
      const za = vz[a]!;
      const zb = vz[b]!;
      const ina = za < lim;
      const inb = zb < lim;
      if (ina) {
        cx[n] = vx[a]!;
        cy[n] = vy[a]!;
        cz[n] = za;
        cs[n] = vs[a]!;
        cu[n] = vu[a]!;
        cv[n] = vv[a]!;
        n++;
      }
      if (ina !== inb) {
        const t = (lim - za) / (zb - za);
        cx[n] = vx[a]! + t * (vx[b]! - vx[a]!);
        cy[n] = vy[a]! + t * (vy[b]! - vy[a]!);
        cz[n] = lim;
        cs[n] = vs[a]! + t * (vs[b]! - vs[a]!);
        cu[n] = vu[a]! + t * (vu[b]! - vu[a]!);
        cv[n] = vv[a]! + t * (vv[b]! - vv[a]!);
        n++;
      }
    }
    // Project in place: cx, cy become pixel coordinates, cz becomes 1 / depth, cu, cv are divided by depth.
    const hw = width / 2;
    const hh = height / 2;
    for (let k = 0; k < n; k++) {
      const iz = 1 / -cz[k]!;
      cx[k] = hw + f * cx[k]! * iz;
      cy[k] = hh - f * cy[k]! * iz;
      cz[k] = iz;
      cu[k] = cu[k]! * iz;
      cv[k] = cv[k]! * iz;
    }
    for (let k = 1; k + 1 < n; k++)
      this.fill(cx, cy, cz, cs, cu, cv, 0, k, k + 1, buf, width, height, textured);
  }

  /**
   * Fills one projected triangle (vertices i0, i1, i2 of the given per-vertex arrays: pixel x, y, 1 / depth,
   * shade, texture coordinates / depth) with depth test and shading.
   */
  private fill(
    X: Float64Array,
    Y: Float64Array,
    IZ: Float64Array,
    S: Float64Array,
    U: Float64Array,
    V: Float64Array,
    i0: number,
    i1: number,
    i2: number,
    buf: Buffers,
    width: number,
    height: number,
    textured: boolean,
  ): void {
    const x0 = X[i0]!;
    const y0 = Y[i0]!;
    const x1 = X[i1]!;
    const y1 = Y[i1]!;
    const x2 = X[i2]!;
    const y2 = Y[i2]!;
    // Counter-clockwise in the camera's view is clockwise on screen (v points down): negative area is front.
    const area = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0);
    if (!(area < 0)) return;
    // `| 0` after clamping: Math.ceil of a value in (-1, 0) is -0, which would deoptimise integer code.
    const minX = Math.max(0, Math.floor(Math.min(x0, x1, x2))) | 0;
    const maxX = Math.min(width - 1, Math.ceil(Math.max(x0, x1, x2))) | 0;
    const minY = Math.max(0, Math.floor(Math.min(y0, y1, y2))) | 0;
    const maxY = Math.min(height - 1, Math.ceil(Math.max(y0, y1, y2))) | 0;
    if (minX > maxX || minY > maxY) return;
    const inv = 1 / -area;
    // Barycentric weight of vertex k at pixel centre (px, py): edge function of the opposite edge / area.
    const a0 = (y1 - y2) * -inv;
    const b0 = (x2 - x1) * -inv;
    const c0 = (x1 * y2 - x2 * y1) * -inv;
    const a1 = (y2 - y0) * -inv;
    const b1 = (x0 - x2) * -inv;
    const c1 = (x2 * y0 - x0 * y2) * -inv;
    const tri = this.tri;
    tri.a0 = a0;
    tri.a1 = a1;
    tri.z0 = IZ[i0]!;
    tri.z1 = IZ[i1]!;
    tri.z2 = IZ[i2]!;
    tri.s0 = S[i0]!;
    tri.s1 = S[i1]!;
    tri.s2 = S[i2]!;
    tri.u0 = U[i0]!;
    tri.u1 = U[i1]!;
    tri.u2 = U[i2]!;
    tri.w0 = V[i0]!;
    tri.w1 = V[i1]!;
    tri.w2 = V[i2]!;
    tri.cr = this.r * 255;
    tri.cg = this.g * 255;
    tri.cb = this.b * 255;
    tri.alpha = this.a;
    tri.segId = this.segId;
    tri.rgb = buf.frame.rgb;
    tri.zinv = buf.zinv;
    tri.seg = buf.seg;
    const opaque = this.a >= 1;
    const texData = textured ? this.texData : undefined;
    if (texData) {
      tri.texData = texData;
      tri.texAdr = this.texAdr;
      tri.tw = this.texW;
      tri.th = this.texH;
      tri.tc = this.texC;
    }
    // The third weight is 1 - l0 - l1: its edge function has these coefficients.
    const a2 = -a0 - a1;
    for (let py = minY; py <= maxY; py++) {
      const yc = py + 0.5;
      const r0 = b0 * yc + c0;
      const r1 = b1 * yc + c1;
      const r2 = 1 - r0 - r1;
      // Span of the row where every weight is non-negative, widened by a pixel on each side: the per-pixel
      // test below decides, the span only saves visiting pixels that cannot be inside.
      // The span's ends are found in floating point, clamped to the bounding box, then widened by a pixel and
      // made integers once (Math.ceil/floor on unclamped values can give -0 or huge numbers, which deoptimise
      // integer code in V8).
      let left = minX as number;
      let right = maxX as number;
      let t = 0.5;
      if (a0 > 1e-12) {
        t = -r0 / a0 - 0.5;
        if (t > left) left = t;
      } else if (a0 < -1e-12) {
        t = -r0 / a0 - 0.5;
        if (t < right) right = t;
      } else if (r0 < 0) continue;
      if (a1 > 1e-12) {
        t = -r1 / a1 - 0.5;
        if (t > left) left = t;
      } else if (a1 < -1e-12) {
        t = -r1 / a1 - 0.5;
        if (t < right) right = t;
      } else if (r1 < 0) continue;
      if (a2 > 1e-12) {
        t = -r2 / a2 - 0.5;
        if (t > left) left = t;
      } else if (a2 < -1e-12) {
        t = -r2 / a2 - 0.5;
        if (t < right) right = t;
      } else if (r2 < 0) continue;
      if (left > right + 1) continue;
      const lo = Math.max(minX, Math.ceil(left) - 1) | 0;
      const hi = Math.min(maxX, Math.floor(right) + 1) | 0;
      const l0 = a0 * (lo + 0.5) + r0;
      const l1 = a1 * (lo + 0.5) + r1;
      const row = (py * width + lo) | 0;
      if (texData) spanTextured(tri, row, hi - lo + 1, l0, l1);
      else if (opaque) spanOpaque(tri, row, hi - lo + 1, l0, l1);
      else spanBlended(tri, row, hi - lo + 1, l0, l1);
    }
  }
}

/**
 * Per-triangle constants of the pixel loops, in one reused object. The loops live in small functions called
 * once per row: a whole triangle in one call made V8 compile its pixel loop on-stack mid-call (OSR), and that
 * code, reused afterwards, was 2-4x slower than the regular optimised function (measured: `--no-use-osr` gave
 * the same speed-up).
 */
class TriangleSetup {
  a0 = 0.5;
  a1 = 0.5;
  z0 = 0.5;
  z1 = 0.5;
  z2 = 0.5;
  s0 = 0.5;
  s1 = 0.5;
  s2 = 0.5;
  u0 = 0.5;
  u1 = 0.5;
  u2 = 0.5;
  w0 = 0.5;
  w1 = 0.5;
  w2 = 0.5;
  cr = 0.5;
  cg = 0.5;
  cb = 0.5;
  alpha = 0.5;
  segId = 0;
  texAdr = 0;
  tw = 1;
  th = 1;
  tc = 3;
  rgb: Uint8Array = new Uint8Array(0);
  zinv: Float32Array = new Float32Array(0);
  seg: Int32Array = new Int32Array(0);
  texData: Uint8Array = new Uint8Array(0);
}

/** Pixels row..row+count-1 of an opaque, untextured triangle: depth test, Gouraud shade, write. */
function spanOpaque(t: TriangleSetup, row: number, count: number, l0: number, l1: number): void {
  const { a0, a1, z0, z1, z2, s0, s1, s2, cr, cg, cb, segId, rgb, zinv, seg } = t;
  for (let k = 0; k < count; k++, row++, l0 += a0, l1 += a1) {
    const l2 = 1 - l0 - l1;
    if (l0 < 0 || l1 < 0 || l2 < 0) continue;
    const z = l0 * z0 + l1 * z1 + l2 * z2;
    if (z <= zinv[row]!) continue;
    let shade = l0 * s0 + l1 * s1 + l2 * s2;
    if (shade > 1) shade = 1;
    const o = 3 * row;
    rgb[o] = cr * shade + 0.5;
    rgb[o + 1] = cg * shade + 0.5;
    rgb[o + 2] = cb * shade + 0.5;
    zinv[row] = z;
    seg[row] = segId;
  }
}

/** As spanOpaque, with the colour modulated by a texture sampled perspective-correctly (nearest texel). */
function spanTextured(t: TriangleSetup, row: number, count: number, l0: number, l1: number): void {
  const { a0, a1, z0, z1, z2, s0, s1, s2, u0, u1, u2, w0, w1, w2, cr, cg, cb, segId, rgb, zinv, seg } = t;
  const { texData, texAdr, tw, th, tc } = t;
  for (let k = 0; k < count; k++, row++, l0 += a0, l1 += a1) {
    const l2 = 1 - l0 - l1;
    if (l0 < 0 || l1 < 0 || l2 < 0) continue;
    const z = l0 * z0 + l1 * z1 + l2 * z2;
    if (z <= zinv[row]!) continue;
    let shade = l0 * s0 + l1 * s1 + l2 * s2;
    if (shade > 1) shade = 1;
    const iz = 1 / z;
    const u = (l0 * u0 + l1 * u1 + l2 * u2) * iz;
    const v = (l0 * w0 + l1 * w1 + l2 * w2) * iz;
    // u, v >= 0 on the plane (its extent maps to [0, texrepeat]); rounding can dip a hair below 0.
    const tx = ((u > 0 ? u * tw : 0) | 0) % tw;
    const ty = ((v > 0 ? v * th : 0) | 0) % th;
    const p = texAdr + (ty * tw + tx) * tc;
    const f = shade / 255;
    const o = 3 * row;
    rgb[o] = cr * texData[p]! * f + 0.5;
    rgb[o + 1] = cg * texData[p + 1]! * f + 0.5;
    rgb[o + 2] = cb * texData[p + 2]! * f + 0.5;
    zinv[row] = z;
    seg[row] = segId;
  }
}

/** Pixels of a translucent triangle: depth-tested against opaque geometry, blended, depth not written. */
function spanBlended(t: TriangleSetup, row: number, count: number, l0: number, l1: number): void {
  const { a0, a1, z0, z1, z2, s0, s1, s2, cr, cg, cb, alpha, rgb, zinv } = t;
  for (let k = 0; k < count; k++, row++, l0 += a0, l1 += a1) {
    const l2 = 1 - l0 - l1;
    if (l0 < 0 || l1 < 0 || l2 < 0) continue;
    const z = l0 * z0 + l1 * z1 + l2 * z2;
    if (z <= zinv[row]!) continue;
    let shade = l0 * s0 + l1 * s1 + l2 * s2;
    if (shade > 1) shade = 1;
    const o = 3 * row;
    rgb[o] = alpha * cr * shade + (1 - alpha) * rgb[o]! + 0.5;
    rgb[o + 1] = alpha * cg * shade + (1 - alpha) * rgb[o + 1]! + 0.5;
    rgb[o + 2] = alpha * cb * shade + (1 - alpha) * rgb[o + 2]! + 0.5;
  }
}

function focal(height: number, fovyDeg: number): number {
  return height / 2 / Math.tan((fovyDeg * Math.PI) / 360);
}

function checkSize(field: string, v: number): void {
  if (!Number.isInteger(v) || v < MIN_IMAGE_SIZE || v > MAX_IMAGE_SIZE) {
    throw new InvalidArgument(
      field,
      `must be an integer in [${MIN_IMAGE_SIZE}, ${MAX_IMAGE_SIZE}] pixels, got ${v}`,
    );
  }
}
