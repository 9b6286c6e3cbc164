/**
 * Messages of the remote-learner role (issue 7): an external learner (Python PPO, CleanRL, Stable-Baselines3, or
 * the TypeScript `RemoteVectorEnv`) opens a vector env of a named task on the server and drives it with batched
 * arrays, with Gymnasium 1.x vector-env semantics. docs/remote-learner.md is the prose version.
 *
 * - Every request carries `req`, a number the learner chooses; the reply (or a `status` error) carries it back,
 *   so a learner driving several env batches on one connection knows what an error answers.
 * - Paced and lossless: one call per env batch is outstanding at a time. A call on a batch whose previous call
 *   is unanswered gets REQUEST_IN_FLIGHT; nothing is queued or dropped.
 * - Tensors are `{dtype, shape, data}` (tensor.ts); observations float32 [N, obsDim], rewards float64 [N],
 *   flags uint8 [N] (0/1), actions float32 or float64 [N, actDim].
 *
 * Kept apart from messages.ts (which spreads these tables into MESSAGES and SENDERS) so the learner role can
 * change without touching the viewer's messages. Nothing here imports messages.ts: that would be an import cycle.
 */
import { arr, bool, literal, num, obj, oneOf, optional, str, uint, type Infer } from './schema.ts';
import { ProtocolError } from './errors.ts';
import { tensor } from './tensor.ts';

/** Most sub-envs one batch may have on the wire (servers set their own, lower limit). */
export const LEARNER_MAX_ENVS = 4096;
/** Most action dimensions on the wire. */
const MAX_ACT_DIM = 256;
/** Gymnasium seeds: integers in [0, 2^32 - 1]. */
const seed = uint(2 ** 32 - 1);
const req = uint();
/** Env batch id, assigned by the server in `vec_opened`. */
const vecId = uint();
const numEnvs = num({ min: 1, max: LEARNER_MAX_ENVS, int: true });

export const AUTORESET_MODE_NAMES = ['next-step', 'same-step', 'disabled'] as const;
export const LEARNER_ACTION_MODES = ['ee_delta', 'joint_delta'] as const;

const flags = tensor({ dtype: ['uint8'], shape: [null], maxElements: LEARNER_MAX_ENVS });
const f64 = tensor({ dtype: ['float64'], shape: [null], maxElements: LEARNER_MAX_ENVS });
const obs = tensor({ dtype: ['float32'], shape: [null, null], maxElements: 64 * 1024 * 1024 });

/**
 * learner -> server: open a vector env. Answered by `vec_opened`, or a status error (UNKNOWN_TASK,
 * LIMIT_EXCEEDED, INVALID_VALUE, ENV_FAILED) carrying this `req`.
 */
export const VecOpen = obj(
  {
    type: literal('vec_open'),
    req,
    /** Task registry name (or a name the server operator registered). */
    task: str({ minLength: 1, maxLength: 256 }),
    numEnvs,
    /** Gymnasium 1.x autoreset mode (default `next-step`, as in Gymnasium). */
    autoreset: optional(oneOf(AUTORESET_MODE_NAMES)),
    /**
     * What `rewards` carries: `sparse` (default), `dense` (plus the task's hand-designed terms), `default` or
     * `oracle` (potential-based progress shaping with that model), `naive` or `progress` (the semantic-trap
     * ablations), or a model source the server operator allowed (an .onnx path, an http(s) URL).
     */
    reward: optional(str({ minLength: 1, maxLength: 2048 })),
    /** The progress model of `naive` and `progress` (default `default`). */
    model: optional(str({ minLength: 1, maxLength: 2048 })),
    /** The learner's discount: required whenever the reward is shaped (one gamma, the learner's). */
    gamma: optional(num({ min: 0, max: 1 })),
    /** Scale k of the progress term (default 1). */
    shapingScale: optional(num({ min: -1e6, max: 1e6 })),
    /** Score a state every this many control steps of an episode and hold Phi in between (default 1). */
    queryStride: optional(num({ min: 1, max: 1_000_000, int: true })),
    /** Keep Phi(s_T) on truncation (default true); false for a learner that cannot bootstrap. */
    bootstrapTruncated: optional(bool()),
    actionMode: optional(oneOf(LEARNER_ACTION_MODES)),
    /** Time limit in control steps, overriding the task's. */
    episodeSteps: optional(num({ min: 1, max: 1_000_000, int: true })),
  },
  (m, path) => {
    const shaped = m.reward !== undefined && !['sparse', 'dense'].includes(m.reward);
    if (shaped && m.gamma === undefined) {
      throw new ProtocolError(
        'MISSING_FIELD',
        `reward "${m.reward}" is shaped with the learner's discount: send gamma`,
        path ? `${path}.gamma` : 'gamma',
      );
    }
  },
);
export type VecOpen = Infer<typeof VecOpen>;

/** server -> learner: the env batch is open; `env` names it in every later call. */
export const VecOpened = obj({
  type: literal('vec_opened'),
  req,
  env: vecId,
  task: str({ maxLength: 256 }),
  instruction: str({ maxLength: 4096 }),
  numEnvs,
  obsDim: uint(1 << 20),
  actDim: uint(MAX_ACT_DIM),
  /** Names of the observation entries, in order. */
  obsNames: arr(str({ maxLength: 256 }), { maxLength: 1 << 20 }),
  /** Actions are a Box [actionLow, actionHigh]^actDim; values outside are clipped by the env. */
  actionLow: num(),
  actionHigh: num(),
  /** Time limit in control steps (truncation). */
  episodeSteps: uint(),
  autoreset: oneOf(AUTORESET_MODE_NAMES),
  /** The reward choice as the server understood it. */
  reward: str({ maxLength: 2048 }),
  /** Shaping mode (`potential`, `naive`, `progress`, or `sparse` when nothing is shaped). */
  shaping: oneOf(['potential', 'naive', 'progress', 'sparse'] as const),
  /** Id of the progress model scoring states, when there is one. */
  rewardModel: optional(str({ maxLength: 512 })),
  gamma: optional(num({ min: 0, max: 1 })),
  queryStride: uint(),
});
export type VecOpened = Infer<typeof VecOpened>;

/**
 * learner -> server: reset every sub-env, or those in `resetMask` (the first reset must reset all). `seed`
 * seeds sub-env i with seed + i; `seeds` gives one per sub-env; neither continues each sub-env's generator.
 */
export const VecReset = obj(
  {
    type: literal('vec_reset'),
    req,
    env: vecId,
    seed: optional(seed),
    seeds: optional(arr(seed, { minLength: 1, maxLength: LEARNER_MAX_ENVS })),
    resetMask: optional(arr(bool(), { minLength: 1, maxLength: LEARNER_MAX_ENVS })),
  },
  (m, path) => {
    if (m.seed !== undefined && m.seeds !== undefined) {
      throw new ProtocolError(
        'INVALID_VALUE',
        'send seed or seeds, not both',
        path ? `${path}.seeds` : 'seeds',
      );
    }
  },
);
export type VecReset = Infer<typeof VecReset>;

/** learner -> server: one step of every sub-env; `actions` is float32 or float64 [numEnvs, actDim]. */
export const VecStep = obj({
  type: literal('vec_step'),
  req,
  env: vecId,
  actions: tensor({
    dtype: ['float32', 'float64'],
    shape: [null, null],
    maxElements: LEARNER_MAX_ENVS * MAX_ACT_DIM,
  }),
});
export type VecStep = Infer<typeof VecStep>;

/** learner -> server: close an env batch (its worker threads stop). Answered by `vec_closed`. */
export const VecClose = obj({ type: literal('vec_close'), req, env: vecId });
export type VecClose = Infer<typeof VecClose>;

/** Per-sub-env info, Gymnasium style: arrays over sub-envs, `_key` masks for entries only some envs have. */
export const VecInfo = obj({
  is_success: flags,
  /** Control steps into the current episode of each sub-env (after the call). */
  episode_step: tensor({ dtype: ['int32'], shape: [null], maxElements: LEARNER_MAX_ENVS }),
  /** Potential Phi stored for the state each sub-env is now in (NaN when no model scores states; 0 for a
   * terminal state). */
  phi: f64,
  /** Step replies: the task's own reward (what `rewards` is before shaping). */
  sparse_reward: optional(f64),
  /** Step replies: the task's hand-designed dense terms (the `dense` baseline). */
  dense_reward: optional(f64),
  /** Privileged stage progress of each state (NaN where the task has none): for ablations and diagnostics. */
  progress: optional(f64),
  /** same-step mode: last observations of episodes that ended this step, float32 [N, obsDim]. */
  final_obs: optional(obs),
  _final_obs: optional(flags),
  final_info: optional(
    obj({
      is_success: flags,
      episode_step: tensor({ dtype: ['int32'], shape: [null], maxElements: LEARNER_MAX_ENVS }),
      /** Phi used for the ended episode's last state (0 if terminated; held from the state before if truncated,
       * since that state's frames are gone once the sub-env has reset). */
      phi: f64,
    }),
  ),
  _final_info: optional(flags),
});
export type VecInfo = Infer<typeof VecInfo>;

/** Server-side time of one call, ms: simulation and waiting for the progress model's answers. */
const Timing = obj({ simMs: num({ min: 0 }), rewardMs: num({ min: 0 }) });

/** server -> learner: the answer to `vec_reset`. */
export const VecResetResult = obj({
  type: literal('vec_reset_result'),
  req,
  env: vecId,
  obs,
  info: VecInfo,
  timing: optional(Timing),
});
export type VecResetResult = Infer<typeof VecResetResult>;

/** server -> learner: the answer to `vec_step`. `rewards` is shaped when the batch shapes (sparse otherwise). */
export const VecStepResult = obj({
  type: literal('vec_step_result'),
  req,
  env: vecId,
  obs,
  rewards: f64,
  terminated: flags,
  truncated: flags,
  info: VecInfo,
  timing: optional(Timing),
});
export type VecStepResult = Infer<typeof VecStepResult>;

/**
 * server -> learner: the batch is closed and its envs freed: the answer to `vec_close` (with its `req`), or
 * unprompted (no `req`) when the batch broke on the server.
 */
export const VecClosed = obj({
  type: literal('vec_closed'),
  req: optional(req),
  env: vecId,
  reason: str({ maxLength: 4096 }),
});
export type VecClosed = Infer<typeof VecClosed>;

export const LEARNER_MESSAGES = {
  vec_open: VecOpen,
  vec_opened: VecOpened,
  vec_reset: VecReset,
  vec_reset_result: VecResetResult,
  vec_step: VecStep,
  vec_step_result: VecStepResult,
  vec_close: VecClose,
  vec_closed: VecClosed,
} as const;

export type LearnerMessageType = keyof typeof LEARNER_MESSAGES;
/** What a learner sends; the server answers each with its reply or a status error. */
export type LearnerRequest = VecOpen | VecReset | VecStep | VecClose;

export const LEARNER_SENDERS: Record<LearnerMessageType, readonly ('learner' | 'server')[]> = {
  vec_open: ['learner'],
  vec_opened: ['server'],
  vec_reset: ['learner'],
  vec_reset_result: ['server'],
  vec_step: ['learner'],
  vec_step_result: ['server'],
  vec_close: ['learner'],
  vec_closed: ['server'],
};
