/**
 * Triangle meshes for MuJoCo geoms, built once per model in each geom's local frame (sizes are static).
 * Non-indexed: every triangle has its own three vertices, so a vertex's normal can be smooth (spheres,
 * capsules, cylinder sides) or flat (boxes, meshes, caps) as the surface needs. Winding is counter-clockwise
 * seen from outside, which the rasteriser uses to cull back faces.
 */
import type { MjModel } from '../sim/mujoco.ts';

export interface GeomMesh {
  /** xyz per vertex, 9 numbers per triangle. */
  positions: Float32Array;
  /** Unit normal per vertex. */
  normals: Float32Array;
  /** Number of triangles. */
  count: number;
  /** Closed surface: back faces can be culled. */
  closed: boolean;
}

export const GEOM = {
  PLANE: 0,
  HFIELD: 1,
  SPHERE: 2,
  CAPSULE: 3,
  ELLIPSOID: 4,
  CYLINDER: 5,
  BOX: 6,
  MESH: 7,
} as const;

/** Segments around an axis and rings from pole to pole: smooth enough silhouettes up to ~224 px per view. */
const SEGMENTS = 12;
const RINGS = 8;
/** Half-size drawn for an infinite plane (size 0), metres. */
const INFINITE_PLANE = 50;

class Builder {
  readonly p: number[] = [];
  readonly n: number[] = [];
  tri(a: number[], b: number[], c: number[], na: number[], nb: number[], nc: number[]): void {
    this.p.push(...a, ...b, ...c);
    this.n.push(...na, ...nb, ...nc);
  }
  flat(a: number[], b: number[], c: number[]): void {
    const ux = b[0]! - a[0]!;
    const uy = b[1]! - a[1]!;
    const uz = b[2]! - a[2]!;
    const vx = c[0]! - a[0]!;
    const vy = c[1]! - a[1]!;
    const vz = c[2]! - a[2]!;
    const nx = uy * vz - uz * vy;
    const ny = uz * vx - ux * vz;
    const nz = ux * vy - uy * vx;
    const l = Math.hypot(nx, ny, nz);
    if (l === 0) return;
    const n = [nx / l, ny / l, nz / l];
    this.tri(a, b, c, n, n, n);
  }
  build(closed: boolean): GeomMesh {
    return {
      positions: Float32Array.from(this.p),
      normals: Float32Array.from(this.n),
      count: this.p.length / 9,
      closed,
    };
  }
}

/**
 * Ellipsoid-like surface of revolution about z: unit sphere points scaled by (rx, ry, rz); `stretch` moves
 * the upper half up and the lower half down (a capsule's cylinder), keeping normals of the unit sphere
 * corrected for the scaling.
 */
function roundSurface(b: Builder, rx: number, ry: number, rz: number, stretch: number): void {
  const vertex = (ring: number, seg: number, upper: boolean): { p: number[]; n: number[] } => {
    const theta = (Math.PI * ring) / RINGS;
    const phi = (2 * Math.PI * seg) / SEGMENTS;
    const sx = Math.sin(theta) * Math.cos(phi);
    const sy = Math.sin(theta) * Math.sin(phi);
    const sz = Math.cos(theta);
    const offset = upper ? stretch : -stretch;
    const nx = sx / rx;
    const ny = sy / ry;
    const nz = sz / rz;
    const l = Math.hypot(nx, ny, nz);
    return { p: [sx * rx, sy * ry, sz * rz + offset], n: [nx / l, ny / l, nz / l] };
  };
  for (let r = 0; r < RINGS; r++) {
    // For a capsule the equator band is split: rings above it belong to the upper cap, below to the lower one.
    const upper = r < RINGS / 2;
    for (let s = 0; s < SEGMENTS; s++) {
      const a = vertex(r, s, upper);
      const bq = vertex(r + 1, s, upper);
      const c = vertex(r + 1, s + 1, upper);
      const d = vertex(r, s + 1, upper);
      if (r > 0) b.tri(a.p, bq.p, d.p, a.n, bq.n, d.n);
      if (r < RINGS - 1) b.tri(d.p, bq.p, c.p, d.n, bq.n, c.n);
    }
  }
  if (stretch > 0) cylinderSide(b, rx, stretch);
}

function cylinderSide(b: Builder, r: number, h: number): void {
  for (let s = 0; s < SEGMENTS; s++) {
    const p0 = (2 * Math.PI * s) / SEGMENTS;
    const p1 = (2 * Math.PI * (s + 1)) / SEGMENTS;
    const n0 = [Math.cos(p0), Math.sin(p0), 0];
    const n1 = [Math.cos(p1), Math.sin(p1), 0];
    const a = [r * n0[0]!, r * n0[1]!, -h];
    const bb = [r * n1[0]!, r * n1[1]!, -h];
    const c = [r * n1[0]!, r * n1[1]!, h];
    const d = [r * n0[0]!, r * n0[1]!, h];
    b.tri(a, bb, c, n0, n1, n1);
    b.tri(a, c, d, n0, n1, n0);
  }
}

function cylinder(b: Builder, r: number, h: number): void {
  cylinderSide(b, r, h);
  for (let s = 0; s < SEGMENTS; s++) {
    const p0 = (2 * Math.PI * s) / SEGMENTS;
    const p1 = (2 * Math.PI * (s + 1)) / SEGMENTS;
    const a = [r * Math.cos(p0), r * Math.sin(p0)];
    const c = [r * Math.cos(p1), r * Math.sin(p1)];
    b.flat([0, 0, h], [a[0]!, a[1]!, h], [c[0]!, c[1]!, h]);
    b.flat([0, 0, -h], [c[0]!, c[1]!, -h], [a[0]!, a[1]!, -h]);
  }
}

function box(b: Builder, x: number, y: number, z: number): void {
  const v = (i: number): number[] => [i & 1 ? x : -x, i & 2 ? y : -y, i & 4 ? z : -z];
  // Faces as corner-index quads, counter-clockwise seen from outside.
  const faces = [
    [1, 3, 7, 5],
    [0, 4, 6, 2],
    [2, 6, 7, 3],
    [0, 1, 5, 4],
    [4, 5, 7, 6],
    [0, 2, 3, 1],
  ];
  for (const [a, bq, c, d] of faces) {
    b.flat(v(a!), v(bq!), v(c!));
    b.flat(v(a!), v(c!), v(d!));
  }
}

function plane(b: Builder, sx: number, sy: number): void {
  const x = sx > 0 ? sx : INFINITE_PLANE;
  const y = sy > 0 ? sy : INFINITE_PLANE;
  b.flat([-x, -y, 0], [x, -y, 0], [x, y, 0]);
  b.flat([-x, -y, 0], [x, y, 0], [-x, y, 0]);
}

function mesh(b: Builder, model: MjModel, id: number): void {
  const vert = model.mesh_vert as Float32Array;
  const face = model.mesh_face as Int32Array;
  const vadr = (model.mesh_vertadr as Int32Array)[id]!;
  const fadr = (model.mesh_faceadr as Int32Array)[id]!;
  const nface = (model.mesh_facenum as Int32Array)[id]!;
  const at = (k: number): number[] => {
    const i = 3 * (vadr + k);
    return [vert[i]!, vert[i + 1]!, vert[i + 2]!];
  };
  for (let f = 0; f < nface; f++) {
    const i = 3 * (fadr + f);
    b.flat(at(face[i]!), at(face[i + 1]!), at(face[i + 2]!));
  }
}

/** The mesh of geom `g`, or undefined for types not drawn (height fields, SDFs). */
export function geomMesh(model: MjModel, g: number): GeomMesh | undefined {
  const type = (model.geom_type as Int32Array)[g]!;
  const size = model.geom_size as Float64Array;
  const s0 = size[3 * g]!;
  const s1 = size[3 * g + 1]!;
  const s2 = size[3 * g + 2]!;
  const b = new Builder();
  switch (type) {
    case GEOM.PLANE:
      plane(b, s0, s1);
      return b.build(false);
    case GEOM.SPHERE:
      roundSurface(b, s0, s0, s0, 0);
      return b.build(true);
    case GEOM.ELLIPSOID:
      roundSurface(b, s0, s1, s2, 0);
      return b.build(true);
    case GEOM.CAPSULE:
      roundSurface(b, s0, s0, s0, s1);
      return b.build(true);
    case GEOM.CYLINDER:
      cylinder(b, s0, s1);
      return b.build(true);
    case GEOM.BOX:
      box(b, s0, s1, s2);
      return b.build(true);
    case GEOM.MESH: {
      const id = (model.geom_dataid as Int32Array)[g]!;
      if (id < 0) return undefined;
      mesh(b, model, id);
      return b.build(true);
    }
    default:
      return undefined;
  }
}
