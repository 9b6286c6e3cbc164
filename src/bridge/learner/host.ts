/**
 * The server side of the remote-learner role: which env batches each learner connection has open, the limits on
 * them, and the answer to every call (the reply, or a `status` error carrying the call's `req`).
 *
 * - Paced: one call per batch runs at a time; another call on the same batch gets REQUEST_IN_FLIGHT at once.
 *   Different batches run concurrently.
 * - A learner that disconnects frees its batches (worker threads stopped, reward models closed), including any
 *   batch still opening: that one is closed as soon as it is ready.
 * - Limits: sub-envs per batch, batches per learner and batches on the server (opening ones count), each failure
 *   LIMIT_EXCEEDED naming the limit.
 */
import { availableParallelism } from 'node:os';
import { EnvClosed, ProgressBridgeError, WorkerFailed } from '../../sim/errors.ts';
import {
  ProtocolError,
  type LearnerRequest,
  type Message,
  type ProtocolErrorCode,
  type Status,
  type VecOpen,
} from '../../protocol/index.ts';
import { EnvBatch, type BatchLimits } from './batch.ts';

export interface LearnerOptions {
  /** Most sub-envs in one batch (default 256). */
  maxEnvsPerBatch?: number;
  /** Most batches one learner connection may have open (default 4). */
  maxBatchesPerLearner?: number;
  /** Most batches open on the server at once, all learners together (default 8). */
  maxBatches?: number;
  /** Worker threads per batch (default: the machine's cores; never more than the batch's sub-envs). */
  workersPerBatch?: number;
  /** Extra task names learners may open, mapped to task module paths (built-in tasks are always offered). */
  tasks?: Readonly<Record<string, string>>;
  /** Model sources (.onnx paths, http(s) URLs) learners may name besides `default` and `oracle`. */
  models?: readonly string[];
  /** Longest wait for the progress model's answers of one step, ms (default 30000); later ones hold Phi. */
  rewardDeadlineMs?: number;
}

/** What the host needs of a connection. */
export interface LearnerPeer {
  readonly id: number;
  send(message: Message): void;
}

interface PeerState {
  peer: LearnerPeer;
  batches: Map<number, EnvBatch>;
  opening: number;
  gone: boolean;
}

/** Status codes for the env's own errors (the rest become ENV_FAILED or INVALID_VALUE). */
const CODE_OF: Record<string, ProtocolErrorCode> = {
  INVALID_ACTION: 'INVALID_ACTION',
  RESET_NEEDED: 'RESET_NEEDED',
  UNKNOWN_TASK: 'UNKNOWN_TASK',
  INVALID_ARGUMENT: 'INVALID_VALUE',
};

export class LearnerHost {
  private readonly peers = new Map<number, PeerState>();
  private nextBatch = 1;
  private readonly limits: BatchLimits;
  private readonly maxEnvsPerBatch: number;
  private readonly maxBatchesPerLearner: number;
  private readonly maxBatches: number;
  private closed = false;

  constructor(
    options: LearnerOptions = {},
    private readonly log: (line: string) => void = () => {},
  ) {
    this.maxEnvsPerBatch = options.maxEnvsPerBatch ?? 256;
    this.maxBatchesPerLearner = options.maxBatchesPerLearner ?? 4;
    this.maxBatches = options.maxBatches ?? 8;
    this.limits = {
      tasks: options.tasks ?? {},
      models: options.models ?? [],
      workers: options.workersPerBatch ?? availableParallelism(),
      rewardDeadlineMs: options.rewardDeadlineMs ?? 30_000,
    };
  }

  /** Batches open or opening on the server. */
  get batchCount(): number {
    let n = 0;
    for (const s of this.peers.values()) n += s.batches.size + s.opening;
    return n;
  }

  /** Serves one call; never throws: every failure is answered to the peer as a status with the call's req. */
  handle(peer: LearnerPeer, msg: LearnerRequest): void {
    const state = this.stateOf(peer);
    void this.serve(state, msg).catch((err: unknown) => this.fail(state, msg, err));
  }

  /** The connection is gone: close all of its batches (and those still opening, once they are open). */
  async disconnect(peerId: number): Promise<void> {
    const state = this.peers.get(peerId);
    if (!state) return;
    state.gone = true;
    const batches = [...state.batches.values()];
    state.batches.clear();
    if (state.opening === 0) this.peers.delete(peerId);
    await Promise.all(batches.map((b) => this.closeBatch(b, 'learner disconnected')));
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.peers.keys()].map((id) => this.disconnect(id)));
  }

  private stateOf(peer: LearnerPeer): PeerState {
    let state = this.peers.get(peer.id);
    if (!state) {
      state = { peer, batches: new Map(), opening: 0, gone: false };
      this.peers.set(peer.id, state);
    }
    return state;
  }

  private async serve(state: PeerState, msg: LearnerRequest): Promise<void> {
    switch (msg.type) {
      case 'vec_open':
        return this.open(state, msg);
      case 'vec_reset': {
        const batch = this.batchOf(state, msg.env);
        const reply = await batch.exclusive(() => batch.reset(msg));
        this.reply(state, { ...reply, req: msg.req });
        return;
      }
      case 'vec_step': {
        const batch = this.batchOf(state, msg.env);
        const reply = await batch.exclusive(() => batch.step(msg));
        this.reply(state, { ...reply, req: msg.req });
        return;
      }
      case 'vec_close': {
        const batch = this.batchOf(state, msg.env);
        state.batches.delete(msg.env);
        await this.closeBatch(batch, 'closed by the learner');
        this.reply(state, {
          type: 'vec_closed',
          req: msg.req,
          env: msg.env,
          reason: 'closed by the learner',
        });
        return;
      }
      default: {
        const never: never = msg;
        throw new ProtocolError(
          'UNKNOWN_TYPE',
          `unhandled learner call ${String((never as { type: unknown }).type)}`,
        );
      }
    }
  }

  private async open(state: PeerState, msg: VecOpen): Promise<void> {
    if (this.closed) throw new ProtocolError('ENV_FAILED', 'the server is shutting down');
    if (msg.numEnvs > this.maxEnvsPerBatch) {
      throw new ProtocolError(
        'LIMIT_EXCEEDED',
        `numEnvs ${msg.numEnvs} is over this server's limit of ${this.maxEnvsPerBatch} sub-envs per batch`,
        'numEnvs',
      );
    }
    if (state.batches.size + state.opening >= this.maxBatchesPerLearner) {
      throw new ProtocolError(
        'LIMIT_EXCEEDED',
        `this learner already has ${this.maxBatchesPerLearner} env batches (the limit per learner); close one first`,
      );
    }
    if (this.batchCount >= this.maxBatches) {
      throw new ProtocolError(
        'LIMIT_EXCEEDED',
        `the server already runs ${this.maxBatches} env batches (its limit); try again when another learner closes one`,
      );
    }
    const id = this.nextBatch++;
    state.opening++;
    let batch: EnvBatch;
    try {
      batch = await EnvBatch.open(id, msg, this.limits);
    } finally {
      state.opening--;
    }
    if (state.gone || this.closed) {
      if (state.opening === 0 && state.gone) this.peers.delete(state.peer.id);
      await this.closeBatch(batch, 'learner disconnected while the batch opened');
      return;
    }
    state.batches.set(id, batch);
    this.log(
      `learner ${state.peer.id} opened env ${id}: ${msg.task} x${msg.numEnvs}, ${batch.description.autoreset}, reward ${batch.choice.name}`,
    );
    this.reply(state, { type: 'vec_opened', req: msg.req, env: id, ...batch.description });
  }

  private batchOf(state: PeerState, env: number): EnvBatch {
    const batch = state.batches.get(env);
    if (!batch) {
      const open = [...state.batches.keys()];
      throw new ProtocolError(
        'UNKNOWN_ENV',
        `no env batch ${env} is open on this connection${open.length ? ` (open: ${open.join(', ')})` : ''}`,
        'env',
      );
    }
    return batch;
  }

  private async closeBatch(batch: EnvBatch, why: string): Promise<void> {
    try {
      await batch.close();
    } catch (err) {
      this.log(`env ${batch.id}: close failed: ${(err as Error).message}`);
    }
    this.log(`env ${batch.id} closed: ${why}`);
  }

  private reply(state: PeerState, msg: Message): void {
    if (!state.gone) state.peer.send(msg);
  }

  private fail(state: PeerState, msg: LearnerRequest, err: unknown): void {
    let perr: ProtocolError;
    if (err instanceof ProtocolError) perr = err;
    else if (err instanceof ProgressBridgeError && CODE_OF[err.code]) {
      perr = new ProtocolError(
        CODE_OF[err.code]!,
        err.message,
        err.code === 'INVALID_ACTION' ? 'actions' : '',
      );
    } else {
      const broken = err instanceof WorkerFailed || err instanceof EnvClosed;
      perr = new ProtocolError('ENV_FAILED', (err as Error)?.message ?? String(err));
      if (!(err instanceof ProgressBridgeError))
        this.log(`learner ${state.peer.id}: ${(err as Error)?.stack ?? String(err)}`);
      // A broken batch cannot serve again: free it and say so, so the learner need not find out call by call.
      if (broken && 'env' in msg) void this.dropBroken(state, msg.env, perr.message);
    }
    const status: Status = {
      type: 'status',
      level: 'error',
      code: perr.code,
      message: perr.message,
      ref: msg.type,
      req: msg.req,
    };
    if (perr.path) status.path = perr.path;
    this.reply(state, status);
  }

  private async dropBroken(state: PeerState, env: number, reason: string): Promise<void> {
    const batch = state.batches.get(env);
    if (!batch) return;
    state.batches.delete(env);
    await this.closeBatch(batch, reason);
    this.reply(state, { type: 'vec_closed', env, reason });
  }
}
