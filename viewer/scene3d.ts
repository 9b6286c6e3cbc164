/**
 * The 3D view: a three.js scene built from a `scene` message, one copy of the bodies per shown env, updated
 * from `frame` messages.
 *
 * Frames: the three.js world IS MuJoCo's world (Z up, metres); the camera's `up` is +Z, the grid lies in the
 * XY plane. Bodies are flat children of their env's group and take T_world_body from frames directly; each geom
 * is a child of its body at T_body_geom. MuJoCo quaternions are [w, x, y, z]; three.js's are (x, y, z, w).
 * three.js cylinders and capsules run along +Y, MuJoCo's along +Z: their geometry is rotated once.
 */
import * as THREE from 'three';
import { OrbitControls } from 'three/examples/jsm/controls/OrbitControls.js';
import { fromTensor, type MessageOf, type SceneGeom } from '../src/protocol/index.ts';

type Scene = MessageOf<'scene'>;
type Frame = MessageOf<'frame'>;

/** Geom groups MuJoCo's viewer shows by default (3-5 usually hold collision geoms). */
const VISIBLE_GROUPS = new Set([0, 1, 2]);

export type Layout = 'single' | 'grid';

interface EnvView {
  group: THREE.Group;
  bodies: THREE.Object3D[];
}

export class SceneView {
  readonly renderer: THREE.WebGLRenderer;
  readonly camera: THREE.PerspectiveCamera;
  readonly controls: OrbitControls;
  private readonly root = new THREE.Scene();
  private world = new THREE.Group();
  private envs = new Map<number, EnvView>();
  private scene: Scene | undefined;
  private layout: Layout = 'single';
  private selected = 0;
  private spacing = 2;
  private disposables: { dispose(): void }[] = [];
  /** Frames applied to the 3D scene. */
  framesApplied = 0;
  lastTime = 0;

  constructor(private readonly canvas: HTMLCanvasElement) {
    // preserveDrawingBuffer lets tests and screenshots read the pixels after the frame was presented.
    this.renderer = new THREE.WebGLRenderer({ canvas, antialias: true, preserveDrawingBuffer: true });
    this.renderer.setPixelRatio(window.devicePixelRatio || 1);
    this.root.background = new THREE.Color(0x15171c);
    this.camera = new THREE.PerspectiveCamera(45, 1, 0.01, 500);
    this.camera.up.set(0, 0, 1);
    this.camera.position.set(2, -2, 1.5);
    this.controls = new OrbitControls(this.camera, canvas);
    this.controls.enableDamping = true;
    const hemi = new THREE.HemisphereLight(0xdfe8ff, 0x30343c, 1.6);
    hemi.position.set(0, 0, 1);
    this.root.add(hemi);
    const sun = new THREE.DirectionalLight(0xffffff, 1.8);
    sun.position.set(2, -3, 5);
    this.root.add(sun);
    const grid = new THREE.GridHelper(20, 40, 0x3a4050, 0x262a33);
    grid.rotation.x = Math.PI / 2; // GridHelper lies in XZ; MuJoCo's floor is XY.
    // Just above z = 0 so the lines show on a floor plane there.
    grid.position.z = 0.001;
    this.root.add(grid);
    this.root.add(this.world);
  }

  get envIds(): number[] {
    return this.scene?.envIds ?? [];
  }

  setScene(scene: Scene): void {
    this.clear();
    this.scene = scene;
    const geometries = buildGeometries(scene);
    const materials = buildMaterials(scene);
    this.disposables.push(...geometries.filter((g): g is THREE.BufferGeometry => !!g), ...materials);
    this.spacing = Math.max(1, 2.2 * Math.max(scene.extent, 0.25));
    // Infinite planes on the world body (the floor) are drawn once for all envs: sixteen coincident copies of a
    // screen-filling plane would cost sixteen times the fill for nothing.
    const shared = (g: SceneGeom): boolean => g.geomType === 'plane' && g.body === 0 && g.size[0] === 0;
    scene.geoms.forEach((g, i) => {
      const geometry = geometries[i];
      if (!shared(g) || !geometry || !VISIBLE_GROUPS.has(g.group)) return;
      const mesh = new THREE.Mesh(geometry, materials[i]!);
      mesh.position.set(g.pos[0]!, g.pos[1]!, g.pos[2]!);
      mesh.quaternion.set(g.quat[1]!, g.quat[2]!, g.quat[3]!, g.quat[0]!);
      this.world.add(mesh);
    });
    for (const env of scene.envIds) {
      const group = new THREE.Group();
      group.name = `env ${env}`;
      const bodies = scene.bodies.map((b, i) => {
        const o = new THREE.Group();
        o.name = b.name || `body ${i}`;
        group.add(o);
        return o;
      });
      scene.geoms.forEach((g, i) => {
        const geometry = geometries[i];
        if (!geometry || shared(g) || !VISIBLE_GROUPS.has(g.group)) return;
        const mesh = new THREE.Mesh(geometry, materials[i]!);
        mesh.name = g.name;
        mesh.position.set(g.pos[0]!, g.pos[1]!, g.pos[2]!);
        mesh.quaternion.set(g.quat[1]!, g.quat[2]!, g.quat[3]!, g.quat[0]!);
        if (g.geomType === 'ellipsoid') mesh.scale.set(g.size[0]!, g.size[1]!, g.size[2]!);
        bodies[g.body]!.add(mesh);
      });
      this.world.add(group);
      this.envs.set(env, { group, bodies });
    }
    // Looking from the front-right and above, as MuJoCo's viewer starts.
    this.controls.target.set(scene.center[0]!, scene.center[1]!, scene.center[2]!);
    this.camera.position.copy(this.controls.target).add(new THREE.Vector3(1, -1, 0.7));
    this.applyLayout();
  }

  setLayout(layout: Layout, selected: number): void {
    this.layout = layout;
    this.selected = selected;
    this.applyLayout();
  }

  private applyLayout(): void {
    const ids = this.envIds;
    const cols = Math.ceil(Math.sqrt(ids.length));
    ids.forEach((env, k) => {
      const view = this.envs.get(env)!;
      if (this.layout === 'single') {
        view.group.visible = env === this.selected;
        view.group.position.set(0, 0, 0);
      } else {
        view.group.visible = true;
        view.group.position.set((k % cols) * this.spacing, -Math.floor(k / cols) * this.spacing, 0);
      }
    });
    if (!this.scene) return;
    const c = this.scene.center;
    const rows = Math.ceil(ids.length / cols);
    const grid = this.layout === 'grid';
    const target = new THREE.Vector3(
      c[0]! + (grid ? ((cols - 1) * this.spacing) / 2 : 0),
      c[1]! - (grid ? ((rows - 1) * this.spacing) / 2 : 0),
      c[2]!,
    );
    const dist = Math.max(0.8, this.scene.extent * 2.6) * (grid ? Math.max(1, cols * 0.85) : 1);
    const offset = this.camera.position.clone().sub(this.controls.target).setLength(dist);
    this.controls.target.copy(target);
    this.camera.position.copy(target).add(offset);
    this.controls.update();
  }

  applyFrame(frame: Frame): void {
    if (!this.scene || frame.sceneId !== this.scene.sceneId) return;
    const view = this.envs.get(frame.env);
    if (!view) return;
    const pos = fromTensor(frame.pos);
    const quat = fromTensor(frame.quat);
    const n = Math.min(view.bodies.length, pos.length / 3);
    for (let i = 1; i < n; i++) {
      const b = view.bodies[i]!;
      b.position.set(pos[3 * i]!, pos[3 * i + 1]!, pos[3 * i + 2]!);
      b.quaternion.set(quat[4 * i + 1]!, quat[4 * i + 2]!, quat[4 * i + 3]!, quat[4 * i]!);
    }
    this.framesApplied++;
    if (frame.env === this.selected) this.lastTime = frame.time;
  }

  render(): void {
    const w = this.canvas.clientWidth;
    const h = this.canvas.clientHeight;
    const size = this.renderer.getSize(new THREE.Vector2());
    if (size.x !== w || size.y !== h) {
      this.renderer.setSize(w, h, false);
      this.camera.aspect = w / Math.max(1, h);
      this.camera.updateProjectionMatrix();
    }
    this.controls.update();
    this.renderer.render(this.root, this.camera);
  }

  private clear(): void {
    this.root.remove(this.world);
    this.world = new THREE.Group();
    this.root.add(this.world);
    this.envs.clear();
    for (const d of this.disposables) d.dispose();
    this.disposables = [];
    this.scene = undefined;
  }
}

/** One geometry per geom (undefined for what is not drawn), shared by every env's copy. */
function buildGeometries(scene: Scene): (THREE.BufferGeometry | undefined)[] {
  const meshCache = new Map<number, THREE.BufferGeometry>();
  const meshGeometry = (index: number): THREE.BufferGeometry => {
    let g = meshCache.get(index);
    if (!g) {
      const m = scene.meshes[index]!;
      g = new THREE.BufferGeometry();
      g.setAttribute('position', new THREE.BufferAttribute(Float32Array.from(fromTensor(m.vertices)), 3));
      g.setIndex(new THREE.BufferAttribute(Uint32Array.from(fromTensor(m.faces)), 1));
      g.computeVertexNormals();
      meshCache.set(index, g);
    }
    return g;
  };
  const extent = Math.max(scene.extent, 1);
  return scene.geoms.map((g: SceneGeom) => {
    const [s0, s1, s2] = g.size as [number, number, number];
    switch (g.geomType) {
      case 'plane':
        // Size 0 is infinite: large enough to sit under a grid of 64 envs.
        return new THREE.PlaneGeometry(s0 > 0 ? 2 * s0 : 40 * extent, s1 > 0 ? 2 * s1 : 40 * extent);
      case 'sphere':
        return new THREE.SphereGeometry(s0, 24, 16);
      case 'ellipsoid':
        return new THREE.SphereGeometry(1, 24, 16);
      case 'capsule':
        return new THREE.CapsuleGeometry(s0, 2 * s1, 8, 20).rotateX(Math.PI / 2);
      case 'cylinder':
        return new THREE.CylinderGeometry(s0, s0, 2 * s1, 24).rotateX(Math.PI / 2);
      case 'box':
        return new THREE.BoxGeometry(2 * s0, 2 * s1, 2 * s2);
      case 'mesh':
      case 'hfield':
        return g.mesh >= 0 ? meshGeometry(g.mesh) : undefined;
      default: {
        const never: never = g.geomType;
        console.warn(`unknown geom type ${String(never)}`);
        return undefined;
      }
    }
  });
}

/** One material per geom: the geom's resolved rgba, with the MuJoCo material's emission and shininess. */
function buildMaterials(scene: Scene): THREE.Material[] {
  const cache = new Map<string, THREE.MeshStandardMaterial>();
  return scene.geoms.map((g) => {
    const m = g.material >= 0 ? scene.materials[g.material] : undefined;
    const key = `${g.rgba.join(',')}|${g.material}|${g.geomType === 'plane'}`;
    let mat = cache.get(key);
    if (!mat) {
      const [r, gr, b, a] = g.rgba as [number, number, number, number];
      const color = new THREE.Color().setRGB(r, gr, b, THREE.SRGBColorSpace);
      mat = new THREE.MeshStandardMaterial({
        color,
        roughness: 1 - 0.6 * Math.min(1, m?.shininess ?? 0.5),
        metalness: 0.05,
        transparent: a < 1,
        opacity: a,
        side: g.geomType === 'plane' ? THREE.DoubleSide : THREE.FrontSide,
      });
      if (m && m.emission > 0) mat.emissive = color.clone().multiplyScalar(Math.min(1, m.emission));
      cache.set(key, mat);
    }
    return mat;
  });
}
