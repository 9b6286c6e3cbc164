/**
 * The main thread's side of the update worker (update-worker.ts): one thread for the run, one update at a time.
 */
import { Worker } from 'node:worker_threads';
import type { PpoLearnerState, PpoStats, RolloutRows } from '../../learn/ppo.ts';
import { ProgressBridgeError } from '../../sim/errors.ts';

export interface UpdateRequest {
  id: number;
  state: PpoLearnerState;
  rows: RolloutRows;
  rewards: Float64Array;
  progress: number;
}

export type UpdateReply =
  | { id: number; ok: true; state: PpoLearnerState; stats: PpoStats }
  | { id: number; ok: false; code: string; message: string };

/** The update thread failed or died; the learner on the main thread is unchanged. */
export class UpdateFailed extends ProgressBridgeError {
  constructor(message: string) {
    super('UPDATE_FAILED', message);
  }
}

export class UpdateWorker {
  private readonly worker: Worker;
  private nextId = 1;
  private waiting: { id: number; resolve: (r: UpdateReply) => void; reject: (e: Error) => void } | undefined;
  private dead: Error | undefined;

  constructor() {
    this.worker = new Worker(new URL('./update-worker-entry.js', import.meta.url));
    this.worker.on('message', (r: UpdateReply) => {
      if (this.waiting?.id === r.id) {
        const w = this.waiting;
        this.waiting = undefined;
        w.resolve(r);
      }
    });
    const fail = (err: Error): void => {
      this.dead ??= err;
      this.waiting?.reject(err);
      this.waiting = undefined;
    };
    this.worker.on('error', (err) => fail(new UpdateFailed(`update thread failed: ${err.message}`)));
    this.worker.on('exit', (code) => fail(new UpdateFailed(`update thread exited with code ${code}`)));
  }

  /** Runs one update; resolves with the updated learner state and the update's statistics. */
  update(
    state: PpoLearnerState,
    rows: RolloutRows,
    rewards: Float64Array,
    progress: number,
  ): Promise<{ state: PpoLearnerState; stats: PpoStats }> {
    if (this.dead) return Promise.reject(this.dead);
    if (this.waiting) return Promise.reject(new UpdateFailed('an update is already running'));
    const id = this.nextId++;
    return new Promise<UpdateReply>((resolve, reject) => {
      this.waiting = { id, resolve, reject };
      const req: UpdateRequest = { id, state, rows, rewards, progress };
      this.worker.postMessage(req);
    }).then((r) => {
      if (!r.ok) throw new UpdateFailed(`${r.code}: ${r.message}`);
      return { state: r.state, stats: r.stats };
    });
  }

  async close(): Promise<void> {
    this.worker.removeAllListeners('exit');
    await this.worker.terminate();
  }
}
