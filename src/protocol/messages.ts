/**
 * Every message of the progress-bridge protocol, defined once: each `const` is the runtime schema the receiver
 * validates with, and the type of the same name is what the code handles. docs/protocol.md is the prose version.
 *
 * Transport: WebSocket binary frames, one MessagePack map per frame (msgpackr with records off: plain maps that
 * any MessagePack library decodes), subprotocol `progress-bridge.v1`. Every message has a string `type`.
 *
 * Frames and conventions:
 * - World frame is MuJoCo's: right-handed, metres, +Z up, gravity along -Z.
 * - Quaternions are MuJoCo's order [w, x, y, z] (unit, Hamilton). In three.js: `q.set(x, y, z, w)`.
 * - Poses are T_world_body: `pos` is the body origin in world coordinates, `quat` rotates body-frame vectors
 *   into the world frame. Geoms and cameras are given relative to their body (T_body_geom, T_body_camera), so
 *   a geom's world pose is T_world_body * T_body_geom. The three.js viewer keeps MuJoCo's frame as its world
 *   frame (camera.up = +Z), so these poses are applied to Object3Ds as they are, without axis swaps.
 * - Cameras look along their local -Z with +Y up, which is also three.js's camera convention.
 *
 * Roles (sent in `hello`):
 * - `viewer` (read-only): receives scene, frames and panel data.
 * - `publisher` (control, token required): sends scene, frames and panel data for the server to fan out to
 *   viewers; what an out-of-process trainer or `rollout` uses. The in-process API is `src/bridge/hub.ts`.
 * The rig and remote-learner roles (issue 7) are added to ROLES with their own messages.
 */
import {
  arr,
  bool,
  bytes,
  num,
  obj,
  oneOf,
  optional,
  record,
  str,
  taggedUnion,
  uint,
  vec,
  literal,
  type Infer,
} from './schema.ts';
import { ProtocolError, PROTOCOL_ERROR_CODES } from './errors.ts';
import { fromTensor, tensor } from './tensor.ts';
import { RIG_MESSAGES, RIG_SENDERS, RigSpec } from './rig.ts';
import { LEARNER_MESSAGES, LEARNER_SENDERS } from './learner.ts';

/** The WebSocket subprotocol; a server and client that do not share it do not talk (close 4406). */
export const SUBPROTOCOL = 'progress-bridge.v1';

export const ROLES = ['viewer', 'publisher', 'rig', 'learner'] as const;
export type Role = (typeof ROLES)[number];
/** Roles that may change what others see: these always need the token. */
export const CONTROL_ROLES: readonly Role[] = ['publisher', 'rig', 'learner'];

/** Most bodies, geoms, meshes a scene may have (a humanoid has ~20 bodies; a mesh-heavy arm ~100 geoms). */
const MAX_BODIES = 10_000;
const MAX_ENVS = 4096;
const envId = uint(MAX_ENVS - 1);
const name = str({ maxLength: 256 });
const rgba = vec(4);

// ---------------------------------------------------------------------------------------------------------
// Handshake

/** client -> server, first message on every connection. `token` is required for control roles always and for
 * every role when the server listens on a non-loopback address. */
export const Hello = obj({
  type: literal('hello'),
  role: oneOf(ROLES),
  token: optional(str({ maxLength: 512 })),
  /** Free text for logs ("viewer/chromium", "trainer pid 123"). */
  client: optional(str({ maxLength: 256 })),
  /** Role `rig` only (required there): what the rig has and needs (src/protocol/rig.ts). */
  rig: optional(RigSpec),
});
export type Hello = Infer<typeof Hello>;

/** server -> client, the answer to a valid `hello`. Scene and frames follow for viewers. */
export const Welcome = obj({
  type: literal('welcome'),
  protocol: literal(SUBPROTOCOL),
  role: oneOf(ROLES),
  /** Connection id for logs. */
  session: uint(),
  /** Pose frames per second the server sends to viewers. */
  rateHz: num({ min: 0.1, max: 1000 }),
  /** Largest message (bytes) this connection may send before getting PAYLOAD_TOO_LARGE. */
  maxMessageBytes: uint(),
});
export type Welcome = Infer<typeof Welcome>;

/** viewer -> server: which envs to receive frames and per-step panel data for (absent: all). Episode summaries,
 * metrics and telemetry always cover every env. */
export const Subscribe = obj({
  type: literal('subscribe'),
  envs: optional(arr(envId, { maxLength: MAX_ENVS })),
  /** Thumbnails on or off (default on). */
  thumbnails: optional(bool()),
});
export type Subscribe = Infer<typeof Subscribe>;

/** server -> client: the outcome of something the client sent. Errors carry a code from PROTOCOL_ERROR_CODES;
 * the connection stays open unless the code says otherwise (AUTH_*, UNSUPPORTED_SUBPROTOCOL). */
export const Status = obj({
  type: literal('status'),
  level: oneOf(['info', 'warning', 'error'] as const),
  code: oneOf([...PROTOCOL_ERROR_CODES, 'OK'] as const),
  message: str({ maxLength: 4096 }),
  /** Path of the offending field (`geoms[3].size`), when there is one. */
  path: optional(str({ maxLength: 512 })),
  /** `type` of the message this answers, when it could be read. */
  ref: optional(str({ maxLength: 64 })),
  /** `req` of the request this answers, when it carried one (remote-learner calls). */
  req: optional(uint()),
});
export type Status = Infer<typeof Status>;

/** server -> viewer, about once a second: what this connection has been sent and what was dropped for it. */
export const Telemetry = obj({
  type: literal('telemetry'),
  /** Pose frames sent to this connection so far. */
  framesSent: uint(),
  /** Pose frames replaced by a newer one before this connection could take them (slow link or client). */
  framesDropped: uint(),
  viewers: uint(),
  /** Bytes waiting in this connection's send buffer when the telemetry was made. */
  buffered: uint(),
  uptimeS: num({ min: 0 }),
});
export type Telemetry = Infer<typeof Telemetry>;

// ---------------------------------------------------------------------------------------------------------
// Scene description (server -> viewer once per scene; publisher -> server)

export const GEOM_TYPES = [
  'plane',
  'hfield',
  'sphere',
  'capsule',
  'ellipsoid',
  'cylinder',
  'box',
  'mesh',
] as const;
export type GeomType = (typeof GEOM_TYPES)[number];

export const SceneBody = obj({
  name,
  /** Parent body index (the world body 0 is its own parent). */
  parent: uint(MAX_BODIES - 1),
  /** True for mocap bodies (moved by the user, not by physics). */
  mocap: optional(bool()),
});
export type SceneBody = Infer<typeof SceneBody>;

/**
 * One geom, posed relative to its body (T_body_geom). `size` is MuJoCo's geom_size: sphere [r], capsule and
 * cylinder [r, half-length along local z], ellipsoid and box [half-extents x, y, z], plane [half-x, half-y]
 * (0 = infinite) and for mesh and hfield the `mesh` index gives the triangles (already in the geom frame).
 */
export const SceneGeom = obj({
  name,
  body: uint(MAX_BODIES - 1),
  geomType: oneOf(GEOM_TYPES),
  size: vec(3),
  pos: vec(3),
  /** [w, x, y, z] */
  quat: vec(4),
  /** Linear RGBA in [0, 1]: the geom's own or its material's (already resolved). */
  rgba,
  /** Index into `materials`, or -1. */
  material: num({ min: -1, int: true }),
  /** Index into `meshes` for mesh and hfield geoms, else -1. */
  mesh: num({ min: -1, int: true }),
  /** MuJoCo geom group; the viewer shows 0-2 by default, as MuJoCo's viewer does. */
  group: uint(31),
});
export type SceneGeom = Infer<typeof SceneGeom>;

/** A triangle mesh in its geom's frame: vertices float32 [V, 3] and faces uint32 [F, 3] (counter-clockwise seen
 * from outside). */
export const SceneMesh = obj({
  name,
  vertices: tensor({ dtype: ['float32'], shape: [null, 3] }),
  faces: tensor({ dtype: ['uint32'], shape: [null, 3] }),
});
export type SceneMesh = Infer<typeof SceneMesh>;

export const SceneMaterial = obj({
  name,
  rgba,
  emission: num({ min: 0 }),
  specular: num({ min: 0 }),
  shininess: num({ min: 0 }),
  reflectance: num({ min: 0 }),
});
export type SceneMaterial = Infer<typeof SceneMaterial>;

/** A MuJoCo camera posed relative to its body (T_body_camera); looks along local -Z with +Y up. */
export const SceneCamera = obj({
  name,
  body: uint(MAX_BODIES - 1),
  pos: vec(3),
  quat: vec(4),
  /** Vertical field of view, degrees. */
  fovy: num({ min: 0, max: 180 }),
});
export type SceneCamera = Infer<typeof SceneCamera>;

/**
 * The model every env of a run shares (one MJCF; envs differ only in state). Frames refer to bodies by index.
 * A new `scene` (new `sceneId`) replaces the old one; frames carry the id of the scene they belong to.
 */
export const Scene = obj(
  {
    type: literal('scene'),
    sceneId: uint(),
    /** Task or model name for the page title. */
    name,
    /** Instruction text of the task, when there is one. */
    instruction: optional(str({ maxLength: 4096 })),
    /** The envs that will send frames, in display order. */
    envIds: arr(envId, { minLength: 1, maxLength: MAX_ENVS }),
    /** Display names of the envs, in the order of `envIds` (rig names in a rig run); default `env <id>`. */
    envNames: optional(arr(str({ minLength: 1, maxLength: 64 }), { maxLength: MAX_ENVS })),
    bodies: arr(SceneBody, { minLength: 1, maxLength: MAX_BODIES }),
    geoms: arr(SceneGeom, { maxLength: 100_000 }),
    meshes: arr(SceneMesh, { maxLength: 10_000 }),
    materials: arr(SceneMaterial, { maxLength: 10_000 }),
    cameras: arr(SceneCamera, { maxLength: 1000 }),
    /** Model centre and extent (MuJoCo's stat.center / stat.extent): where to point the camera and how far. */
    center: vec(3),
    extent: num({ min: 0 }),
  },
  (s, path) => {
    const at = (p: string): string => (path ? `${path}.${p}` : p);
    if (s.envNames && s.envNames.length !== s.envIds.length) {
      throw new ProtocolError(
        'INVALID_VALUE',
        `${s.envNames.length} names for ${s.envIds.length} envIds`,
        at('envNames'),
      );
    }
    const nb = s.bodies.length;
    s.bodies.forEach((b, i) => {
      if (b.parent >= nb)
        throw new ProtocolError(
          'INVALID_VALUE',
          `parent ${b.parent} >= ${nb} bodies`,
          at(`bodies[${i}].parent`),
        );
    });
    s.geoms.forEach((g, i) => {
      if (g.body >= nb)
        throw new ProtocolError('INVALID_VALUE', `body ${g.body} >= ${nb} bodies`, at(`geoms[${i}].body`));
      if (g.mesh >= s.meshes.length) {
        throw new ProtocolError(
          'INVALID_VALUE',
          `mesh ${g.mesh} >= ${s.meshes.length} meshes`,
          at(`geoms[${i}].mesh`),
        );
      }
      if (g.material >= s.materials.length) {
        throw new ProtocolError(
          'INVALID_VALUE',
          `material ${g.material} >= ${s.materials.length}`,
          at(`geoms[${i}].material`),
        );
      }
      if ((g.geomType === 'mesh' || g.geomType === 'hfield') && g.mesh < 0) {
        throw new ProtocolError(
          'INVALID_VALUE',
          `${g.geomType} geom needs a mesh index`,
          at(`geoms[${i}].mesh`),
        );
      }
    });
    s.cameras.forEach((c, i) => {
      if (c.body >= nb)
        throw new ProtocolError('INVALID_VALUE', `body ${c.body} >= ${nb} bodies`, at(`cameras[${i}].body`));
    });
    s.meshes.forEach((m, i) => {
      const nv = m.vertices.shape[0]!;
      const faces = fromTensor(m.faces);
      for (let k = 0; k < faces.length; k++) {
        if (faces[k]! >= nv) {
          throw new ProtocolError(
            'INVALID_VALUE',
            `face index ${faces[k]} >= ${nv} vertices`,
            at(`meshes[${i}].faces`),
          );
        }
      }
    });
  },
);
export type Scene = Infer<typeof Scene>;

// ---------------------------------------------------------------------------------------------------------
// Streams (server -> viewer; publisher -> server)

/**
 * The pose of every body of one env at one instant: T_world_body for body i is pos[i], quat[i]. Sent at the
 * server's rate; a viewer that falls behind gets only the newest frame per env (older ones are dropped and
 * counted in telemetry), so `seq` may skip.
 */
export const Frame = obj(
  {
    type: literal('frame'),
    sceneId: uint(),
    env: envId,
    /** Producer's frame counter for this env, increasing. */
    seq: uint(),
    /** Simulation time (s). */
    time: num(),
    /** float32 [nbody, 3], metres, world frame. */
    pos: tensor({ dtype: ['float32'], shape: [null, 3], maxElements: 3 * MAX_BODIES }),
    /** float32 [nbody, 4], [w, x, y, z]. */
    quat: tensor({ dtype: ['float32'], shape: [null, 4], maxElements: 4 * MAX_BODIES }),
  },
  (f, path) => {
    if (f.pos.shape[0] !== f.quat.shape[0]) {
      throw new ProtocolError(
        'INVALID_VALUE',
        `pos has ${f.pos.shape[0]} bodies, quat ${f.quat.shape[0]}`,
        path ? `${path}.quat` : 'quat',
      );
    }
  },
);
export type Frame = Infer<typeof Frame>;

/**
 * Per-step panel data of one env's current episode: steps `step .. step + phi.length - 1` of episode
 * `episode`. `phi` is the progress potential Phi(s) in [0, 1] stored for each state (from the reward model, or the
 * privileged oracle when `source` says so); `shaped` and `sparse` are the rewards of the transitions into those
 * states. A new `episode` value starts a new curve.
 */
export const Progress = obj(
  {
    type: literal('progress'),
    env: envId,
    episode: uint(),
    step: uint(),
    phi: arr(num({ min: 0, max: 1 }), { maxLength: 100_000 }),
    shaped: arr(num(), { maxLength: 100_000 }),
    sparse: arr(num(), { maxLength: 100_000 }),
    /** Where Phi comes from: model name, or "oracle" for privileged state. */
    source: optional(str({ maxLength: 128 })),
  },
  (p, path) => {
    if (p.shaped.length !== p.phi.length || p.sparse.length !== p.phi.length) {
      throw new ProtocolError(
        'INVALID_VALUE',
        `phi, shaped and sparse must be equally long (${p.phi.length}, ${p.shaped.length}, ${p.sparse.length})`,
        path ? `${path}.shaped` : 'shaped',
      );
    }
  },
);
export type Progress = Infer<typeof Progress>;

/** One finished episode, for the returns and success-rate panels. */
export const Episode = obj({
  type: literal('episode'),
  env: envId,
  episode: uint(),
  /** Sum of the sparse (task) reward. */
  return: num(),
  /** Sum of the shaped reward, when shaping is on. */
  shapedReturn: optional(num()),
  length: uint(),
  success: bool(),
  /** Env steps of the whole run when the episode ended (x axis of training curves). */
  totalSteps: optional(uint()),
});
export type Episode = Infer<typeof Episode>;

/** Training scalars at one global step (losses, KL, learning rate, steps/s): `values` by name. */
export const Metrics = obj({
  type: literal('metrics'),
  step: uint(),
  values: record(num(), { maxKeys: 256 }),
});
export type Metrics = Infer<typeof Metrics>;

/** A small image of what the reward model saw from one camera of one env (PNG or JPEG bytes), at a low rate. */
export const Thumbnail = obj({
  type: literal('thumbnail'),
  env: envId,
  camera: name,
  step: uint(),
  mime: oneOf(['image/png', 'image/jpeg'] as const),
  width: uint(4096),
  height: uint(4096),
  data: bytes({ maxLength: 4 * 1024 * 1024 }),
});
export type Thumbnail = Infer<typeof Thumbnail>;

// ---------------------------------------------------------------------------------------------------------

/** Every message, keyed by `type`. Adding a message here makes the compiler demand it wherever messages are
 * dispatched (the `Record<MessageType, ...>` tables and exhaustive switches). */
export const MESSAGES = {
  hello: Hello,
  welcome: Welcome,
  subscribe: Subscribe,
  status: Status,
  telemetry: Telemetry,
  scene: Scene,
  frame: Frame,
  progress: Progress,
  episode: Episode,
  metrics: Metrics,
  thumbnail: Thumbnail,
  ...RIG_MESSAGES,
  ...LEARNER_MESSAGES,
} as const;

export const Message = taggedUnion(MESSAGES);
export type Message = Infer<typeof Message>;
export type MessageType = keyof typeof MESSAGES;
export type MessageOf<T extends MessageType> = Extract<Message, { type: T }>;

/** Which roles may send each message to the server; `server` marks messages only the server sends. */
export const SENDERS: Record<MessageType, readonly (Role | 'server')[]> = {
  hello: ['viewer', 'publisher', 'rig', 'learner'],
  welcome: ['server'],
  subscribe: ['viewer'],
  status: ['server'],
  telemetry: ['server'],
  scene: ['server', 'publisher'],
  frame: ['server', 'publisher'],
  progress: ['server', 'publisher'],
  episode: ['server', 'publisher'],
  metrics: ['server', 'publisher'],
  thumbnail: ['server', 'publisher'],
  ...RIG_SENDERS,
  ...LEARNER_SENDERS,
};
