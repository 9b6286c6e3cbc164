/**
 * A vector env that runs on a bridge server, with the API of the in-process `VectorEnv` (create / reset / step /
 * close, the same spaces, Gymnasium 1.x semantics, the same error classes): a learner written against VectorEnv
 * runs against a remote server by changing how the env is made.
 *
 * One WebSocket connection per env batch, one call at a time (the protocol is paced: the server refuses a second
 * call while one runs). `rewards` is the shaped reward when the batch was opened with a shaped reward choice;
 * the task's own reward is in `info.sparse_reward` and the potentials in `info.phi`.
 */
import { BridgeClient, ConnectRefused } from '../bridge/client.ts';
import { Box } from '../env/spaces.ts';
import {
  fromTensor,
  ProtocolError,
  toTensor,
  type Message,
  type ProtocolErrorCode,
  type VecInfo,
  type VecOpen,
  type VecOpened,
  type VecReset,
} from '../protocol/index.ts';
import { EnvClosed, errorFromCode, InvalidArgument, type ProgressBridgeError } from '../sim/errors.ts';
import type { AutoresetMode } from '../vector/layout.ts';
import { packActions, type VectorInfo, type VectorResetOptions } from '../vector/vector-env.ts';

export interface RemoteVectorEnvOptions {
  /** The bridge's WebSocket URL, e.g. ws://127.0.0.1:8787/ws. */
  url: string;
  /** The server's token (PBRIDGE_TOKEN); learners always need it. */
  token: string;
  task: string;
  numEnvs: number;
  /** Default `next-step`, as in Gymnasium. */
  autoreset?: AutoresetMode;
  /** sparse (default) | dense | default | oracle | naive | progress | a model source the server allows. */
  reward?: string;
  /** The progress model of `naive` and `progress`. */
  model?: string;
  /** The learner's discount; required for shaped rewards. */
  gamma?: number;
  shapingScale?: number;
  /** Score states every this many control steps (default 1): fewer model round trips per step. */
  queryStride?: number;
  bootstrapTruncated?: boolean;
  actionMode?: 'ee_delta' | 'joint_delta';
  /** Time limit in control steps, overriding the task's. */
  episodeSteps?: number;
  /** Free text for the server's logs. */
  client?: string;
  /** Longest wait for one reply, ms (default 120000: opening starts worker threads and loads models). */
  timeoutMs?: number;
}

/** `VectorInfo` plus what the server's reward path adds. */
export interface RemoteVectorInfo extends VectorInfo {
  /** [N] Phi stored for each sub-env's current state (NaN without a model; 0 for a terminal state). */
  phi: Float64Array;
  /** Step replies: [N] the task's own reward (before shaping). */
  sparse_reward?: Float64Array;
  final_info?: { is_success: Uint8Array; episode_step: Int32Array; phi?: Float64Array };
}

export interface RemoteStepResult {
  /** [numEnvs * obsDim] */
  obs: Float32Array;
  rewards: Float64Array;
  terminated: Uint8Array;
  truncated: Uint8Array;
  info: RemoteVectorInfo;
  /** Server-side milliseconds of this call: simulation, and waiting for the progress model. */
  timing?: { simMs: number; rewardMs: number };
}

/** Codes the in-process env throws as its own classes: remote ones become the same classes. */
const ENV_CODES: readonly string[] = ['INVALID_ACTION', 'RESET_NEEDED', 'UNKNOWN_TASK'];

export class RemoteVectorEnv {
  readonly numEnvs: number;
  readonly obsDim: number;
  readonly actDim: number;
  readonly obsNames: readonly string[];
  readonly episodeSteps: number;
  readonly instruction: string;
  readonly singleObservationSpace: Box;
  readonly singleActionSpace: Box;
  readonly metadata: { autoreset_mode: AutoresetMode };
  /** The server's description of the batch (reward choice, model, gamma, stride). */
  readonly description: VecOpened;
  private nextReq = 2;
  private closed = false;
  private busy = false;

  private constructor(
    private readonly client: BridgeClient,
    opened: VecOpened,
    private readonly timeoutMs: number,
  ) {
    this.description = opened;
    this.numEnvs = opened.numEnvs;
    this.obsDim = opened.obsDim;
    this.actDim = opened.actDim;
    this.obsNames = opened.obsNames;
    this.episodeSteps = opened.episodeSteps;
    this.instruction = opened.instruction;
    this.singleObservationSpace = new Box([opened.obsDim], -Infinity, Infinity);
    this.singleActionSpace = new Box([opened.actDim], opened.actionLow, opened.actionHigh);
    this.metadata = { autoreset_mode: opened.autoreset };
  }

  /** Connects as a learner and opens the env batch. */
  static async create(o: RemoteVectorEnvOptions): Promise<RemoteVectorEnv> {
    const timeoutMs = o.timeoutMs ?? 120_000;
    const client = await BridgeClient.connect(o.url, {
      role: 'learner',
      token: o.token,
      client: o.client ?? 'RemoteVectorEnv (TypeScript)',
      timeoutMs,
    });
    const open: VecOpen = { type: 'vec_open', req: 1, task: o.task, numEnvs: o.numEnvs };
    for (const k of [
      'autoreset',
      'reward',
      'model',
      'gamma',
      'shapingScale',
      'queryStride',
      'bootstrapTruncated',
      'actionMode',
      'episodeSteps',
    ] as const) {
      if (o[k] !== undefined) (open as Record<string, unknown>)[k] = o[k];
    }
    try {
      client.send(open);
      const opened = await waitReply(client, 'vec_opened', 1, timeoutMs);
      return new RemoteVectorEnv(client, opened, timeoutMs);
    } catch (err) {
      client.ws.terminate();
      throw err;
    }
  }

  /** The batch id on the server. */
  get envId(): number {
    return this.description.env;
  }

  async reset(opts: VectorResetOptions = {}): Promise<{ obs: Float32Array; info: RemoteVectorInfo }> {
    const msg: VecReset = { type: 'vec_reset', req: 0, env: this.envId };
    if (Array.isArray(opts.seed)) msg.seeds = opts.seed;
    else if (opts.seed !== undefined) msg.seed = opts.seed;
    const mask = opts.options?.reset_mask;
    if (mask !== undefined) msg.resetMask = Array.from(mask, (m) => Boolean(m));
    const r = await this.call('vec_reset_result', msg);
    return { obs: fromTensor(r.obs), info: infoOf(r.info) };
  }

  /** Steps every sub-env with actions [numEnvs * actDim] (or numEnvs arrays of actDim). */
  async step(actions: ArrayLike<number> | ArrayLike<ArrayLike<number>>): Promise<RemoteStepResult> {
    const packed = this.pack(actions);
    const r = await this.call('vec_step_result', {
      type: 'vec_step',
      req: 0,
      env: this.envId,
      actions: toTensor(packed, [this.numEnvs, this.actDim]),
    });
    const info = infoOf(r.info);
    if (this.metadata.autoreset_mode === 'same-step' && !info._final_obs) {
      // The server leaves final_* out when no episode ended; VectorEnv always has them in same-step mode.
      const n = this.numEnvs;
      info.final_obs = new Float32Array(n * this.obsDim);
      info._final_obs = new Uint8Array(n);
      info.final_info = {
        is_success: new Uint8Array(n),
        episode_step: new Int32Array(n),
        phi: new Float64Array(n).fill(NaN),
      };
      info._final_info = new Uint8Array(n);
    }
    return {
      obs: fromTensor(r.obs),
      rewards: fromTensor(r.rewards),
      terminated: fromTensor(r.terminated),
      truncated: fromTensor(r.truncated),
      info,
      ...(r.timing ? { timing: r.timing } : {}),
    };
  }

  /** Closes the batch on the server (its workers stop) and the connection. Safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (!this.client.closed && !this.busy) {
      try {
        this.client.send({ type: 'vec_close', req: this.nextReq++, env: this.envId });
        await this.client.next('vec_closed', 5000);
      } catch {
        // The server frees the batch when the connection drops anyway.
      }
    }
    this.client.close();
  }

  private pack(actions: ArrayLike<number> | ArrayLike<ArrayLike<number>>): Float32Array {
    const out = new Float32Array(this.numEnvs * this.actDim);
    // NaN and Inf go through: the server answers INVALID_ACTION, as the in-process env would throw it.
    packActions(actions, this.numEnvs, this.actDim, out, false);
    return out;
  }

  private async call<T extends 'vec_reset_result' | 'vec_step_result'>(
    type: T,
    msg: Extract<Message, { type: 'vec_reset' | 'vec_step' }>,
  ): Promise<Extract<Message, { type: T }>> {
    if (this.closed) throw new EnvClosed('the remote vector env is closed');
    if (this.busy) throw new InvalidArgument('call', 'a reset() or step() is still running; await it first');
    this.busy = true;
    try {
      const req = this.nextReq++;
      this.client.send({ ...msg, req });
      return await waitReply(this.client, type, req, this.timeoutMs);
    } catch (err) {
      // A batch the server closed (or a dropped connection) cannot serve again.
      if ((err as ProgressBridgeError).code === 'ENV_CLOSED') this.closed = true;
      throw err;
    } finally {
      this.busy = false;
    }
  }
}

/** Waits for the reply to request `req`: the message of `type`, or a status error (thrown as an error class). */
async function waitReply<T extends 'vec_opened' | 'vec_reset_result' | 'vec_step_result'>(
  client: BridgeClient,
  type: T,
  req: number,
  timeoutMs: number,
): Promise<Extract<Message, { type: T }>> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    let m: Message;
    try {
      m = await client.next(undefined, Math.max(1, deadline - performance.now()));
    } catch (err) {
      if (err instanceof ConnectRefused) throw new EnvClosed(`the bridge connection closed: ${err.message}`);
      throw err;
    }
    if (m.type === type && (m as { req?: number }).req === req) return m as Extract<Message, { type: T }>;
    if (m.type === 'status' && m.level === 'error' && (m.req === req || m.req === undefined))
      throw remoteError(m);
    if (m.type === 'vec_closed' && m.req === undefined) {
      throw new EnvClosed(`the server closed env ${m.env}: ${m.reason}`);
    }
  }
}

function remoteError(s: Extract<Message, { type: 'status' }>): Error {
  const message =
    s.path && s.message.startsWith(`${s.path}: `) ? s.message.slice(s.path.length + 2) : s.message;
  if (ENV_CODES.includes(s.code)) return errorFromCode(s.code, s.message);
  if (s.code === 'ENV_FAILED') return errorFromCode('ENV_CLOSED', `ENV_FAILED: ${s.message}`);
  return new ProtocolError(s.code as ProtocolErrorCode, message, s.path ?? '');
}

function infoOf(w: VecInfo): RemoteVectorInfo {
  const n = w.is_success.shape[0]!;
  const info: RemoteVectorInfo = {
    is_success: fromTensor(w.is_success),
    episode_step: fromTensor(w.episode_step),
    progress: w.progress ? fromTensor(w.progress) : new Float64Array(n).fill(NaN),
    dense_reward: w.dense_reward ? fromTensor(w.dense_reward) : new Float64Array(n),
    phi: fromTensor(w.phi),
  };
  if (w.sparse_reward) info.sparse_reward = fromTensor(w.sparse_reward);
  if (w.final_obs) info.final_obs = fromTensor(w.final_obs);
  if (w._final_obs) info._final_obs = fromTensor(w._final_obs);
  if (w.final_info) {
    info.final_info = {
      is_success: fromTensor(w.final_info.is_success),
      episode_step: fromTensor(w.final_info.episode_step),
      phi: fromTensor(w.final_info.phi),
    };
  }
  if (w._final_info) info._final_info = fromTensor(w._final_info);
  return info;
}
