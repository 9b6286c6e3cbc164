/**
 * The oracle "model": progress read from the simulator's privileged state (each task's `oracleProgress()`).
 * An ablation and a test fixture only: it sees what no camera-based model can, so its results are labelled as
 * such wherever they are reported.
 */
import { missing, type ProgressModel, type ProgressRequest, type ProgressResponse } from './model.ts';

export class OracleProgressModel implements ProgressModel {
  readonly id = 'oracle@1 (privileged state, ablation)';
  readonly maxBatch = 4096;

  async predict(batch: readonly ProgressRequest[]): Promise<Omit<ProgressResponse, 'latencyMs'>[]> {
    return batch.map((req) => {
      const p = req.privileged?.progress;
      if (p === undefined || !Number.isFinite(p)) {
        return missing(
          this.id,
          'error',
          'request has no privileged progress (the task defines no oracleProgress)',
        );
      }
      return { progress: Math.min(1, Math.max(0, p)), status: 'ok' as const, model: this.id };
    });
  }
}
