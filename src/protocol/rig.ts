/**
 * Messages of the `rig` role: a real robot (or `pbridge rig-sim`) that provides an environment. The rig declares
 * what it has in `hello.rig`, then runs one control loop: it sends `rig_obs` every control step and waits for the
 * `rig_action` that answers it (one observation outstanding: lossless and paced). docs/rig.md is the prose
 * version, with the episode store format.
 *
 * Episode lifecycle (the server numbers episodes per rig name, continuing across connections):
 *   rig_ready{episode} -> rig_obs ... (each answered by rig_action) -> the episode ends (rig_action.ended set, or a
 *   rig_mark) -> rig_reset -> rig_episode{episode + 1} -> rig_obs ...
 * A rig_reset while an episode runs ends it as truncated. A disconnect truncates it too; reconnecting starts a
 * new episode.
 *
 * Time: `time` fields a rig sends are its own clock (seconds, any epoch); the server never compares them with its
 * own. Lateness is measured on the server's clock from the moment an observation arrives.
 */
import { ProtocolError } from './errors.ts';
import {
  arr,
  bool,
  bytes,
  literal,
  num,
  obj,
  oneOf,
  optional,
  record,
  str,
  uint,
  type Infer,
} from './schema.ts';
import { fromTensor, tensor, type Tensor } from './tensor.ts';

/** Encodings a rig may send frames in. `raw` is RGB uint8 row-major [height, width, 3], row 0 at the top. */
export const FRAME_ENCODINGS = ['jpeg', 'png', 'raw'] as const;
export type FrameEncoding = (typeof FRAME_ENCODINGS)[number];

/** Most cameras, proprio entries and action dimensions a rig may declare. */
export const RIG_MAX_CAMERAS = 16;
export const RIG_MAX_PROPRIO = 4096;
export const RIG_MAX_ACTION = 256;
/** Largest encoded frame accepted (a 4K PNG fits). */
export const RIG_MAX_FRAME_BYTES = 24 * 1024 * 1024;

const at = (path: string, p: string): string => (path ? `${path}.${p}` : p);

export const RigCamera = obj({
  name: str({ minLength: 1, maxLength: 64 }),
  width: uint(8192),
  height: uint(8192),
  encoding: oneOf(FRAME_ENCODINGS),
});
export type RigCamera = Infer<typeof RigCamera>;

export const RigActionSpec = obj(
  {
    dim: num({ min: 1, max: RIG_MAX_ACTION, int: true }),
    /** Per-dimension bounds; the server clips every action it sends into them. */
    low: arr(num(), { minLength: 1, maxLength: RIG_MAX_ACTION }),
    high: arr(num(), { minLength: 1, maxLength: RIG_MAX_ACTION }),
    /** Control rate; the deadline of an action is relative to its period. */
    rateHz: num({ min: 0.1, max: 1000 }),
  },
  (a, path) => {
    for (const k of ['low', 'high'] as const) {
      if (a[k].length !== a.dim) {
        throw new ProtocolError('INVALID_VALUE', `has ${a[k].length} entries, dim is ${a.dim}`, at(path, k));
      }
    }
    a.low.forEach((l, i) => {
      if (!(l <= a.high[i]!)) {
        throw new ProtocolError('INVALID_VALUE', `low ${l} > high ${a.high[i]}`, at(path, `low[${i}]`));
      }
    });
  },
);
export type RigActionSpec = Infer<typeof RigActionSpec>;

/** What a rig declares in `hello.rig` (required for the rig role). */
export const RigSpec = obj(
  {
    /** Rig name: episodes are stored and numbered under it ([A-Za-z0-9._-], so it is a safe directory name). */
    name: str({ minLength: 1, maxLength: 64 }),
    /** The task's language instruction, given to the reward model. */
    instruction: str({ minLength: 1, maxLength: 4096 }),
    cameras: arr(RigCamera, { maxLength: RIG_MAX_CAMERAS }),
    /** Names of the proprioception entries, in the order of `rig_obs.proprio`. */
    proprio: obj({ names: arr(str({ minLength: 1, maxLength: 128 }), { maxLength: RIG_MAX_PROPRIO }) }),
    action: RigActionSpec,
    /** True when the rig reports success itself (`rig_obs.success`); otherwise the reward model decides. */
    successSensor: optional(bool()),
  },
  (s, path) => {
    if (!/^[A-Za-z0-9._-]+$/.test(s.name) || s.name.startsWith('.')) {
      throw new ProtocolError(
        'INVALID_VALUE',
        'use letters, digits, ".", "_" and "-" (not leading ".")',
        at(path, 'name'),
      );
    }
    const seen = new Set<string>();
    s.cameras.forEach((c, i) => {
      if (seen.has(c.name))
        throw new ProtocolError(
          'INVALID_VALUE',
          `duplicate camera "${c.name}"`,
          at(path, `cameras[${i}].name`),
        );
      seen.add(c.name);
      if (c.width < 1 || c.height < 1)
        throw new ProtocolError('OUT_OF_RANGE', 'width and height must be >= 1', at(path, `cameras[${i}]`));
    });
  },
);
export type RigSpec = Infer<typeof RigSpec>;

/** A float vector tensor of one dimension whose entries are all finite (NaN/Inf are how broken sensors show). */
function finiteVector(maxLength: number) {
  const inner = tensor({ dtype: ['float32', 'float64'], shape: [null], maxElements: maxLength });
  return {
    describe: `${inner.describe} of finite values`,
    parse(v: unknown, path = ''): Tensor<'float32' | 'float64'> {
      const t = inner.parse(v, path);
      const values = fromTensor(t);
      for (let i = 0; i < values.length; i++) {
        if (!Number.isFinite(values[i]!)) {
          throw new ProtocolError(
            'OUT_OF_RANGE',
            `entry ${i} is ${values[i]}; must be finite`,
            at(path, 'data'),
          );
        }
      }
      return t;
    },
  };
}

// ---------------------------------------------------------------------------------------------------------
// rig -> server

/**
 * rig -> server, once per control step: the state the rig is in now. Answered by one `rig_action` (or a
 * `status` error, in which case nothing was stored).
 */
export const RigObs = obj({
  type: literal('rig_obs'),
  /** Strictly increasing on one connection; `rig_action.seq` echoes it. */
  seq: uint(),
  /** The episode this observation belongs to (from rig_ready / rig_episode). */
  episode: uint(),
  /** The rig's own clock, seconds. */
  time: num(),
  /** One frame per declared camera, in the camera's declared encoding (raw: RGB uint8 [h, w, 3] bytes). */
  frames: record(bytes({ maxLength: RIG_MAX_FRAME_BYTES }), { maxKeys: RIG_MAX_CAMERAS }),
  /** float32 or float64 [n], n = the declared proprio names. */
  proprio: finiteVector(RIG_MAX_PROPRIO),
  /** The rig's success sensor, when it has one: true ends the episode here (terminated, reward 1). */
  success: optional(bool()),
  /**
   * A human took over for the step that led to this observation (HIL-SERL): the action the robot actually
   * executed, float [action.dim]. Stored as the executed action of that transition, flagged as an intervention.
   */
  intervention: optional(finiteVector(RIG_MAX_ACTION)),
  /** The rig did not apply the previous `rig_action` (it came past the rig's own deadline) and held its command. */
  held: optional(bool()),
  /** Simulated rigs only: the simulator's privileged progress, read by the `oracle` reward model (an ablation). */
  privileged: optional(num({ min: 0, max: 1 })),
});
export type RigObs = Infer<typeof RigObs>;

/** rig -> server: end the current episode (truncated if it is still running) and start the next one. */
export const RigReset = obj({
  type: literal('rig_reset'),
  /** Why, for the store ("time_limit", "operator", "e-stop"). */
  reason: optional(str({ maxLength: 128 })),
});
export type RigReset = Infer<typeof RigReset>;

/**
 * rig -> server: a human's verdict on the current episode at its newest state. `success` ends it as
 * terminated with reward 1 on the last transition; `failure` ends it as truncated (the state is not an MDP end).
 */
export const RigMark = obj({
  type: literal('rig_mark'),
  outcome: oneOf(['success', 'failure'] as const),
  /** The episode the human judged; a mark for another episode is refused (EPISODE_MISMATCH). */
  episode: uint(),
});
export type RigMark = Infer<typeof RigMark>;

// ---------------------------------------------------------------------------------------------------------
// server -> rig

/** server -> rig, after `welcome`: how this rig will be served, and the episode to start. */
export const RigReady = obj({
  type: literal('rig_ready'),
  episode: uint(),
  /** Where actions come from: `onnx:<path>`, `learner`, or `zero` (no policy: a zero action clipped to bounds). */
  policy: str({ maxLength: 1024 }),
  /** Reward model id, or "none". */
  reward: str({ maxLength: 256 }),
  /** Cameras whose frames the reward model reads. */
  rewardCameras: arr(str({ maxLength: 64 }), { maxLength: RIG_MAX_CAMERAS }),
  gamma: num({ min: 0, max: 1 }),
  /** An action decided later than this after its observation arrived is sent with `late: true`. */
  deadlineMs: num({ min: 0 }),
  /** Where this rig's episodes are stored on the server. */
  store: str({ maxLength: 4096 }),
});
export type RigReady = Infer<typeof RigReady>;

/** How an episode ended, as the store records it. */
export const RigEpisodeEnd = obj({
  episode: uint(),
  /** Observations stored (states 0 .. steps-1). */
  steps: uint(),
  terminated: bool(),
  truncated: bool(),
  success: bool(),
  /** success_sensor, success_model, mark_success, mark_failure, reset, disconnect, server_shutdown. */
  reason: str({ maxLength: 128 }),
  return: num(),
  shapedReturn: num(),
});
export type RigEpisodeEnd = Infer<typeof RigEpisodeEnd>;

/**
 * server -> rig, the answer to one `rig_obs`, sent only after that step is on disk (fsync). Apply `action` for
 * the next control period unless `late` (the server decided it past the deadline) or `ended` (the episode is over:
 * reset the robot and send `rig_reset`).
 */
export const RigAction = obj({
  type: literal('rig_action'),
  seq: uint(),
  episode: uint(),
  /** Index of the observation in its episode (0 = the first). */
  step: uint(),
  /** float32 [action.dim], inside the declared bounds. */
  action: tensor({ dtype: ['float32'], shape: [null], maxElements: RIG_MAX_ACTION }),
  late: bool(),
  /** Server time from the observation's arrival to this action being decided, ms. */
  decideMs: num({ min: 0 }),
  /**
   * The newest transition whose reward is settled (the reward model answers asynchronously, so this trails the
   * control loop): Phi of its end state, the sparse and the shaped reward. Absent until the first one settles.
   */
  display: optional(
    obj({
      step: uint(),
      phi: num({ min: 0, max: 1 }),
      reward: num(),
      shaped: num(),
    }),
  ),
  ended: optional(RigEpisodeEnd),
});
export type RigAction = Infer<typeof RigAction>;

/** server -> rig, the answer to `rig_reset` and `rig_mark`: what ended (if anything) and the current episode. */
export const RigEpisode = obj({
  type: literal('rig_episode'),
  /** The episode the next observation belongs to (after a mark: still the ended one until rig_reset). */
  episode: uint(),
  /** False after a mark: send rig_reset before the next observation. */
  running: bool(),
  ended: optional(RigEpisodeEnd),
});
export type RigEpisode = Infer<typeof RigEpisode>;

/** The rig messages, merged into MESSAGES in messages.ts. */
export const RIG_MESSAGES = {
  rig_obs: RigObs,
  rig_reset: RigReset,
  rig_mark: RigMark,
  rig_ready: RigReady,
  rig_action: RigAction,
  rig_episode: RigEpisode,
} as const;

/** Who sends each rig message (merged into SENDERS). */
export const RIG_SENDERS: Record<keyof typeof RIG_MESSAGES, readonly ('rig' | 'server')[]> = {
  rig_obs: ['rig'],
  rig_reset: ['rig'],
  rig_mark: ['rig'],
  rig_ready: ['server'],
  rig_action: ['server'],
  rig_episode: ['server'],
};
