/**
 * What the viewer needs from a MuJoCo model: the scene description (built once per model) and body poses
 * (read from MjData each frame). Everything is copied out of the WASM heap: views into it die when it grows.
 */
import type { SceneInit } from './hub.ts';
import {
  GEOM_TYPES,
  toTensor,
  type SceneCamera,
  type SceneGeom,
  type SceneMaterial,
  type SceneMesh,
} from '../protocol/index.ts';
import type { MjData, MjModel, Mujoco } from '../sim/mujoco.ts';
import { namesOf } from '../sim/mujoco.ts';

/** MuJoCo's default geom rgba: a geom that keeps it shows its material's colour. */
const DEFAULT_RGBA = [0.5, 0.5, 0.5, 1];

export interface SceneSourceOptions {
  /** Shown in the page title (default "model"). */
  name?: string;
  instruction?: string;
  /** The envs that will send frames (default [0]). */
  envIds?: number[];
}

function triples(a: ArrayLike<number>, i: number, n: number): number[] {
  const out: number[] = [];
  for (let k = 0; k < n; k++) out.push(a[i * n + k]!);
  return out;
}

/** The model's meshes as vertex and face tensors, in mesh id order. */
function meshesOf(mj: Mujoco, model: MjModel): SceneMesh[] {
  const names = model.nmesh > 0 ? meshNames(mj, model) : [];
  const vert = model.mesh_vert as Float32Array;
  const face = model.mesh_face as Int32Array;
  const vadr = model.mesh_vertadr as Int32Array;
  const vnum = model.mesh_vertnum as Int32Array;
  const fadr = model.mesh_faceadr as Int32Array;
  const fnum = model.mesh_facenum as Int32Array;
  const out: SceneMesh[] = [];
  for (let m = 0; m < model.nmesh; m++) {
    const v = Float32Array.from(vert.subarray(3 * vadr[m]!, 3 * (vadr[m]! + vnum[m]!)));
    const f = Uint32Array.from(face.subarray(3 * fadr[m]!, 3 * (fadr[m]! + fnum[m]!)));
    out.push({ name: names[m]!, vertices: toTensor(v, [vnum[m]!, 3]), faces: toTensor(f, [fnum[m]!, 3]) });
  }
  return out;
}

function meshNames(mj: Mujoco, model: MjModel): string[] {
  const names: string[] = [];
  for (let i = 0; i < model.nmesh; i++)
    names.push(mj.mj_id2name(model, mj.mjtObj.mjOBJ_MESH.value, i) || `#${i}`);
  return names;
}

/**
 * A height field as a triangle grid in its geom's frame: MuJoCo's hfield_size is [radius x, radius y,
 * elevation z, base z]; data is nrow x ncol elevations in [0, 1], row 0 at -y.
 */
function hfieldMesh(model: MjModel, h: number): SceneMesh {
  const nrow = (model.hfield_nrow as Int32Array)[h]!;
  const ncol = (model.hfield_ncol as Int32Array)[h]!;
  const [rx, ry, ez] = triples(model.hfield_size as Float64Array, h, 4) as [number, number, number];
  const adr = (model.hfield_adr as Int32Array)[h]!;
  const data = model.hfield_data as Float32Array;
  const v = new Float32Array(nrow * ncol * 3);
  for (let r = 0; r < nrow; r++) {
    for (let c = 0; c < ncol; c++) {
      const i = r * ncol + c;
      v[3 * i] = -rx + (2 * rx * c) / Math.max(1, ncol - 1);
      v[3 * i + 1] = -ry + (2 * ry * r) / Math.max(1, nrow - 1);
      v[3 * i + 2] = ez * data[adr + i]!;
    }
  }
  const f = new Uint32Array(Math.max(0, (nrow - 1) * (ncol - 1) * 6));
  let k = 0;
  for (let r = 0; r + 1 < nrow; r++) {
    for (let c = 0; c + 1 < ncol; c++) {
      const a = r * ncol + c;
      f.set([a, a + 1, a + ncol + 1, a, a + ncol + 1, a + ncol], k);
      k += 6;
    }
  }
  return {
    name: `hfield#${h}`,
    vertices: toTensor(v, [nrow * ncol, 3]),
    faces: toTensor(f, [f.length / 3, 3]),
  };
}

/** The scene description of a compiled model (the same for every env that uses it). */
export function sceneFromModel(mj: Mujoco, model: MjModel, options: SceneSourceOptions = {}): SceneInit {
  const bodyNames = namesOf(mj, model, 'body');
  const parent = model.body_parentid as Int32Array;
  const mocap = model.body_mocapid as Int32Array;
  const bodies = bodyNames.map((name, i) => ({
    name: i === 0 ? 'world' : name,
    parent: parent[i]!,
    ...(mocap[i]! >= 0 ? { mocap: true } : {}),
  }));

  const meshes = meshesOf(mj, model);
  const hfieldMeshIndex: number[] = [];
  for (let h = 0; h < model.nhfield; h++) {
    hfieldMeshIndex.push(meshes.length);
    meshes.push(hfieldMesh(model, h));
  }

  const matRgba = model.mat_rgba as Float32Array;
  const materials: SceneMaterial[] = [];
  for (let m = 0; m < model.nmat; m++) {
    materials.push({
      name: mj.mj_id2name(model, mj.mjtObj.mjOBJ_MATERIAL.value, m) || `#${m}`,
      rgba: triples(matRgba, m, 4),
      emission: (model.mat_emission as Float32Array)[m]!,
      specular: (model.mat_specular as Float32Array)[m]!,
      shininess: (model.mat_shininess as Float32Array)[m]!,
      reflectance: (model.mat_reflectance as Float32Array)[m]!,
    });
  }

  const geomNames = namesOf(mj, model, 'geom');
  const type = model.geom_type as Int32Array;
  const rgba = model.geom_rgba as Float32Array;
  const matid = model.geom_matid as Int32Array;
  const dataid = model.geom_dataid as Int32Array;
  const geoms: SceneGeom[] = [];
  for (let g = 0; g < model.ngeom; g++) {
    const geomType = GEOM_TYPES[type[g]!];
    // SDF geoms (plugins) have no triangles to show.
    if (geomType === undefined) continue;
    const own = triples(rgba, g, 4);
    const mat = matid[g]!;
    const useMaterial = mat >= 0 && own.every((v, k) => v === DEFAULT_RGBA[k]);
    let mesh = -1;
    if (geomType === 'mesh') mesh = dataid[g]!;
    else if (geomType === 'hfield') mesh = hfieldMeshIndex[dataid[g]!] ?? -1;
    if ((geomType === 'mesh' || geomType === 'hfield') && mesh < 0) continue;
    geoms.push({
      name: geomNames[g]!,
      body: (model.geom_bodyid as Int32Array)[g]!,
      geomType,
      size: triples(model.geom_size as Float64Array, g, 3),
      pos: triples(model.geom_pos as Float64Array, g, 3),
      quat: triples(model.geom_quat as Float64Array, g, 4),
      rgba: useMaterial ? triples(matRgba, mat, 4) : own,
      material: mat,
      mesh,
      group: (model.geom_group as Int32Array)[g]!,
    });
  }

  const camNames = namesOf(mj, model, 'camera');
  const cameras: SceneCamera[] = camNames.map((name, c) => ({
    name,
    body: (model.cam_bodyid as Int32Array)[c]!,
    pos: triples(model.cam_pos as Float64Array, c, 3),
    quat: triples(model.cam_quat as Float64Array, c, 4),
    fovy: (model.cam_fovy as Float64Array)[c]!,
  }));

  const stat = model.stat;
  const center = Array.from(stat.center as Float64Array);
  const extent = stat.extent;
  (stat as { delete?: () => void }).delete?.();

  const scene: SceneInit = {
    name: options.name ?? 'model',
    envIds: options.envIds ?? [0],
    bodies,
    geoms,
    meshes,
    materials,
    cameras,
    center,
    extent,
  };
  if (options.instruction !== undefined) scene.instruction = options.instruction;
  return scene;
}

/** Reads T_world_body of every body from MjData into reusable float32 buffers (what `Publisher.poses` takes). */
export class PoseReader {
  readonly pos: Float32Array;
  readonly quat: Float32Array;

  constructor(readonly nbody: number) {
    this.pos = new Float32Array(3 * nbody);
    this.quat = new Float32Array(4 * nbody);
  }

  /** Copies data.xpos and data.xquat (views taken now: earlier ones may have gone stale). */
  read(data: MjData): this {
    const xpos = data.xpos as Float64Array;
    const xquat = data.xquat as Float64Array;
    if (xpos.length !== this.pos.length || xquat.length !== this.quat.length) {
      throw new RangeError(
        `MjData has ${xpos.length / 3} body poses, expected ${this.nbody} (a stale heap view or another model)`,
      );
    }
    this.pos.set(xpos);
    this.quat.set(xquat);
    return this;
  }
}
