/**
 * The one adapter around the official MuJoCo WebAssembly bindings (`@mujoco/mujoco`).
 *
 * Why an adapter: embind handles are not garbage-collected, typed-array views into the WASM heap die silently
 * when the heap grows, out-parameters need heap buffers, and MuJoCo reports errors as thrown strings. Everything
 * else in the project goes through this module so those traps are handled once.
 */
import loadMujocoModule from '@mujoco/mujoco';
import type { MainModule, MjData, MjModel, DoubleBuffer } from '@mujoco/mujoco';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isMainThread, threadId } from 'node:worker_threads';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { FileNotFoundError, ModelLoadError, type MjcfLocation } from './errors.ts';

export type Mujoco = MainModule;
export type { MjData, MjModel };

let modulePromise: Promise<Mujoco> | undefined;

/** Loads the WASM module once per thread (each worker thread has its own heap). */
export function loadMujoco(): Promise<Mujoco> {
  modulePromise ??= (
    isMainThread ? loadMujocoModule() : loadMujocoModule({ wasmBinary: threadWasmBytes() })
  ) as Promise<Mujoco>;
  return modulePromise;
}

/**
 * The MuJoCo WASM bytes with a custom section naming this thread appended (engines ignore custom sections).
 * V8 shares one compiled module between the threads of a process that compile identical bytes, and worker
 * threads stepping MuJoCo on that shared code ran 15-20% slower each than on code of their own (measured on the
 * raw mj_step loop: 2 threads scaled 1.66x over 1 with shared code, 1.96x with distinct bytes, 2.05x as two
 * processes). The price is one compile and one copy of the machine code per worker.
 */
function threadWasmBytes(): Uint8Array {
  const wasm = readFileSync(createRequire(import.meta.url).resolve('@mujoco/mujoco/mujoco.wasm'));
  const name = new TextEncoder().encode(`pbridge-thread-${threadId}`);
  const payload = [...leb128(name.length), ...name];
  const section = Uint8Array.from([0x00, ...leb128(payload.length), ...payload]);
  const out = new Uint8Array(wasm.length + section.length);
  out.set(wasm, 0);
  out.set(section, wasm.length);
  return out;
}

/** Unsigned LEB128, the WASM binary format's integer encoding. */
function leb128(n: number): number[] {
  const bytes: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    bytes.push(b);
  } while (n !== 0);
  return bytes;
}

/**
 * Splits a MuJoCo compiler error into its message and location. MuJoCo words these several ways:
 * "Element name 'x', id 3, line 7", "Element 'geom', line 3", "Line number=1: XMLElement name=worldbody",
 * "Error opening file 'a.stl'".
 */
export function parseMujocoError(raw: unknown): { message: string; location: MjcfLocation } {
  const text = (raw instanceof Error ? raw.message : String(raw))
    .replace(/^MuJoCo Error:\s*/, '')
    .replace(/^Loading error:\s*/, '')
    .trim();
  const location: MjcfLocation = {};
  const named = /Element name '([^']*)', id (\d+)(?:, line (\d+))?/.exec(text);
  const typed = /Element '([^']+)'(?:, line (\d+))?/.exec(text);
  const tinyxml = /Line number=(\d+): XMLElement name=(\S+)/.exec(text);
  const kind = /\bin (\w+)(?: \d+)?\s*(?:\n|$)/.exec(text)?.[1];
  if (named) {
    const name = named[1] ? `'${named[1]}'` : `#${named[2]}`;
    location.element = kind ? `${kind} ${name}` : name;
    if (named[3] !== undefined) location.line = Number(named[3]);
  } else if (typed) {
    location.element = typed[1]!;
    if (typed[2] !== undefined) location.line = Number(typed[2]);
  } else if (tinyxml) {
    location.line = Number(tinyxml[1]);
    location.element = tinyxml[2]!;
  }
  const file = /(?:opening|reading|file)\s+'([^']+)'/i.exec(text);
  if (file?.[1]) location.file = file[1];
  const lines = text.split('\n').map((l) => l.trim());
  let message = lines[0]!.replace(/^Error:\s*/, '');
  if (tinyxml) message = `${message} ${lines[1]!.split(' Line number')[0]}`.replace(/:\s+/, ': ');
  return { message, location };
}

/** Compiles an MJCF string that references no files on disk. */
export function modelFromXmlString(mj: Mujoco, xml: string, source = '<string>'): MjModel {
  try {
    return mj.MjModel.from_xml_string(xml);
  } catch (err) {
    const { message, location } = parseMujocoError(err);
    throw new ModelLoadError(source, message, location, { cause: err });
  }
}

let mountCounter = 0;
const ASSET_ATTR = /\bfile\s*=\s*"([^"]+)"/g;
const DIR_ATTR = /\b(meshdir|texturedir|assetdir)\s*=\s*"([^"]+)"/g;

const XML_COMMENT = /<!--[\s\S]*?-->/g;

/**
 * The MJCF file and every file it references (meshes, textures, includes), resolved on disk the way MuJoCo's
 * compiler does; references that do not exist are left for MuJoCo to report.
 */
export function collectAssets(mainPath: string): string[] {
  const root = dirname(mainPath);
  const seen = new Set<string>();
  const queue = [mainPath];
  const dirs = new Set<string>([root]);
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    if (!file.endsWith('.xml')) continue;
    const text = readFileSync(file, 'utf8').replace(XML_COMMENT, '');
    for (const m of text.matchAll(DIR_ATTR)) dirs.add(resolve(root, m[2]!));
    for (const m of text.matchAll(ASSET_ATTR)) {
      const name = m[1]!;
      const candidates = isAbsolute(name) ? [name] : [...dirs].map((d) => resolve(d, name));
      candidates.push(resolve(dirname(file), name));
      for (const candidate of candidates) {
        if (existsSync(candidate) && statSync(candidate).isFile()) queue.push(candidate);
      }
    }
  }
  return [...seen];
}

/**
 * Compiles an MJCF file from disk with every mesh, texture and included file it references. The files are
 * copied into the module's in-memory file system under one mount directory with their relative layout kept,
 * so `meshdir`, `<include>` and relative paths behave exactly as they do for native MuJoCo.
 */
export function modelFromFile(mj: Mujoco, path: string): MjModel {
  const mainPath = resolve(path);
  if (!existsSync(mainPath) || !statSync(mainPath).isFile()) throw new FileNotFoundError(path, 'MJCF file');
  const root = dirname(mainPath);
  const mount = `/pbridge-model-${mountCounter++}`;
  const written: string[] = [];
  try {
    for (const file of collectAssets(mainPath)) {
      const rel = relative(root, file);
      // Files outside the model's folder (../meshes) keep their layout below a synthetic parent.
      const target = join(mount, 'root', rel.split(sep).join('/'));
      mj.FS.mkdirTree(dirname(target), 0o777);
      mj.FS.writeFile(target, readFileSync(file));
      written.push(target);
    }
    return mj.MjModel.from_xml_path(join(mount, 'root', relative(root, mainPath)));
  } catch (err) {
    if (err instanceof FileNotFoundError) throw err;
    const { message, location } = parseMujocoError(err);
    if (location.file) location.file = location.file.replace(`${mount}/root/`, '');
    throw new ModelLoadError(path, message.split(`${mount}/root/`).join(''), location, { cause: err });
  } finally {
    // The compiled model holds its own copies; the staged files would only use heap.
    for (const file of written) mj.FS.unlink(file);
  }
}

/** Reusable heap buffers for functions with array out-parameters (allocate before taking heap views). */
export class HeapDoubles {
  readonly buffer: DoubleBuffer;
  constructor(mj: Mujoco, length: number) {
    this.buffer = new mj.DoubleBuffer(length);
  }
  /** A fresh view: views into the heap go stale when it grows, so never keep this across allocations. */
  view(): Float64Array {
    return this.buffer.GetView() as Float64Array;
  }
  delete(): void {
    this.buffer.delete();
  }
}

/** Full integration state (time, qpos, qvel, act, warmstart, ctrl, applied forces, mocap, eq, userdata). */
export function stateSignature(mj: Mujoco): number {
  return mj.mjtState.mjSTATE_INTEGRATION.value;
}

/** A snapshot of everything needed to continue a simulation bit for bit. */
export function getState(mj: Mujoco, model: MjModel, data: MjData): Float64Array {
  const sig = stateSignature(mj);
  const size = mj.mj_stateSize(model, sig);
  const buf = new HeapDoubles(mj, size);
  try {
    mj.mj_getState(model, data, buf.buffer, sig);
    return Float64Array.from(buf.view());
  } finally {
    buf.delete();
  }
}

/** Restores a snapshot taken by `getState` on the same model. */
export function setState(mj: Mujoco, model: MjModel, data: MjData, state: Float64Array): void {
  const sig = stateSignature(mj);
  const size = mj.mj_stateSize(model, sig);
  if (state.length !== size) {
    throw new RangeError(`state snapshot has ${state.length} numbers; this model needs ${size}`);
  }
  mj.mj_setState(model, data, state as unknown as number[], sig);
  mj.mj_forward(model, data);
}

export type ObjectKind = 'body' | 'joint' | 'site' | 'geom' | 'camera' | 'actuator' | 'sensor';

const COUNT_FIELD = {
  body: 'nbody',
  joint: 'njnt',
  site: 'nsite',
  geom: 'ngeom',
  camera: 'ncam',
  actuator: 'nu',
  sensor: 'nsensor',
} as const satisfies Record<ObjectKind, string>;

function objType(mj: Mujoco, kind: ObjectKind): number {
  const t = mj.mjtObj;
  const byKind: Record<ObjectKind, number> = {
    body: t.mjOBJ_BODY.value,
    joint: t.mjOBJ_JOINT.value,
    site: t.mjOBJ_SITE.value,
    geom: t.mjOBJ_GEOM.value,
    camera: t.mjOBJ_CAMERA.value,
    actuator: t.mjOBJ_ACTUATOR.value,
    sensor: t.mjOBJ_SENSOR.value,
  };
  return byKind[kind];
}

/** Object id by name, failing with a message that lists what the model has. */
export function requireId(mj: Mujoco, model: MjModel, kind: ObjectKind, name: string): number {
  const id = mj.mj_name2id(model, objType(mj, kind), name);
  if (id < 0) {
    throw new RangeError(
      `model has no ${kind} named "${name}"; it has: ${namesOf(mj, model, kind).join(', ')}`,
    );
  }
  return id;
}

/** Names of all objects of one kind, in id order (unnamed ones as #id). */
export function namesOf(mj: Mujoco, model: MjModel, kind: ObjectKind): string[] {
  const n = model[COUNT_FIELD[kind]] as number;
  const type = objType(mj, kind);
  const names: string[] = [];
  for (let i = 0; i < n; i++) names.push(mj.mj_id2name(model, type, i) || `#${i}`);
  return names;
}
