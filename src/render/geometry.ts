/**
 * Triangle meshes for MuJoCo geoms, built once per model in each geom's local frame (sizes are static).
 * Indexed: smooth surfaces (spheres, capsules, cylinder sides) share each vertex among the triangles around it,
 * so a frame transforms, lights and projects every vertex once; flat faces (boxes, caps, meshes) get vertices
 * of their own carrying the face normal. Winding is counter-clockwise seen from outside, which the rasteriser
 * uses to cull back faces.
 */
import type { MjModel } from '../sim/mujoco.ts';

export interface GeomMesh {
  /** xyz per vertex. */
  positions: Float32Array;
  /** Unit normal per vertex. */
  normals: Float32Array;
  /** Three vertex indices per triangle. */
  indices: Uint32Array;
  /** Number of vertices. */
  vertices: number;
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
  readonly idx: number[] = [];
  vertex(p: number[], n: number[]): number {
    this.p.push(p[0]!, p[1]!, p[2]!);
    this.n.push(n[0]!, n[1]!, n[2]!);
    return this.p.length / 3 - 1;
  }
  tri(a: number, b: number, c: number): void {
    this.idx.push(a, b, c);
  }
  /** A flat triangle: three vertices of its own with the face normal. */
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
    this.tri(this.vertex(a, n), this.vertex(b, n), this.vertex(c, n));
  }
  build(closed: boolean): GeomMesh {
    return {
      positions: Float32Array.from(this.p),
      normals: Float32Array.from(this.n),
      indices: Uint32Array.from(this.idx),
      vertices: this.p.length / 3,
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
  // Grid of (RINGS + 1) x (SEGMENTS + 1) vertices; a capsule doubles the equator ring (one copy per cap).
  const grid: number[][] = [];
  const half = RINGS / 2;
  for (let r = 0; r <= RINGS; r++) {
    const copies = stretch > 0 && r === half ? [true, false] : [r < half || (r === half && stretch === 0)];
    for (const upper of copies) {
      const row: number[] = [];
      for (let sg = 0; sg <= SEGMENTS; sg++) {
        const theta = (Math.PI * r) / RINGS;
        const phi = (2 * Math.PI * sg) / SEGMENTS;
        const sx = Math.sin(theta) * Math.cos(phi);
        const sy = Math.sin(theta) * Math.sin(phi);
        const sz = Math.cos(theta);
        const nx = sx / rx;
        const ny = sy / ry;
        const nz = sz / rz;
        const l = Math.hypot(nx, ny, nz);
        const offset = upper ? stretch : -stretch;
        row.push(b.vertex([sx * rx, sy * ry, sz * rz + offset], [nx / l, ny / l, nz / l]));
      }
      grid.push(row);
    }
  }
  // Rows of the grid in order; for a capsule, row `half` is the upper cap's equator and `half + 1` the lower's.
  const rowOf = (r: number, upperCap: boolean): number[] =>
    stretch > 0 && r > half
      ? grid[r + 1]!
      : stretch > 0 && r === half && !upperCap
        ? grid[half + 1]!
        : grid[r]!;
  for (let r = 0; r < RINGS; r++) {
    const upperCap = r < half;
    const top = rowOf(r, upperCap);
    const bottom = rowOf(r + 1, upperCap);
    for (let sg = 0; sg < SEGMENTS; sg++) {
      if (r > 0) b.tri(top[sg]!, bottom[sg]!, top[sg + 1]!);
      if (r < RINGS - 1) b.tri(top[sg + 1]!, bottom[sg]!, bottom[sg + 1]!);
    }
  }
  if (stretch > 0) {
    // The capsule's cylinder joins the two copies of the equator.
    const up = grid[half]!;
    const down = grid[half + 1]!;
    for (let sg = 0; sg < SEGMENTS; sg++) {
      b.tri(down[sg]!, down[sg + 1]!, up[sg + 1]!);
      b.tri(down[sg]!, up[sg + 1]!, up[sg]!);
    }
  }
}

function cylinderSide(b: Builder, r: number, h: number): void {
  const bottom: number[] = [];
  const top: number[] = [];
  for (let sg = 0; sg <= SEGMENTS; sg++) {
    const phi = (2 * Math.PI * sg) / SEGMENTS;
    const n = [Math.cos(phi), Math.sin(phi), 0];
    bottom.push(b.vertex([r * n[0]!, r * n[1]!, -h], n));
    top.push(b.vertex([r * n[0]!, r * n[1]!, h], n));
  }
  for (let sg = 0; sg < SEGMENTS; sg++) {
    b.tri(bottom[sg]!, bottom[sg + 1]!, top[sg + 1]!);
    b.tri(bottom[sg]!, top[sg + 1]!, top[sg]!);
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
