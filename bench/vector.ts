/**
 * Section 2: vector env throughput at 1 and 2 worker threads (same task, same number of envs, same seeded
 * random actions). The VectorEnv module is imported at run time so this bench builds while it is written.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { randomActions } from './replay.ts';
import { median, progress, timeAsync } from './stats.ts';

/** The part of src/vector/vector-env.ts this bench uses. */
interface VectorEnvLike {
  readonly numEnvs: number;
  readonly obsDim: number;
  readonly actDim: number;
  reset(opts?: { seed?: number }): Promise<{ obs: Float32Array }>;
  step(actions: Float32Array): Promise<{ obs: Float32Array }>;
  close(): Promise<void>;
}

interface VectorEnvClass {
  create(opts: { task: string; numEnvs: number; workers: number; seed?: number }): Promise<VectorEnvLike>;
}

export const VECTOR_ENV_PATH = fileURLToPath(new URL('../src/vector/vector-env.ts', import.meta.url));

export async function loadVectorEnv(): Promise<VectorEnvClass | undefined> {
  if (!existsSync(VECTOR_ENV_PATH)) return undefined;
  const mod = (await import(pathToFileURL(VECTOR_ENV_PATH).href)) as { VectorEnv?: VectorEnvClass };
  return mod.VectorEnv;
}

export interface VectorRun {
  workers: number;
  /** Total env (control) steps per second over all sub-envs (wall clock). */
  envStepsPerSec: number;
  /** The same per CPU second of the whole process (main thread and workers): the cost, not the speed. */
  envStepsPerCpuSec: number;
  rates: number[];
  createSeconds: number;
}

export interface VectorResult {
  task: string;
  numEnvs: number;
  frameSkip: number;
  stepsPerRepeat: number;
  runs: VectorRun[];
}

export interface VectorConfig {
  task: string;
  numEnvs: number;
  workers: number[];
  /** Vector steps before timing (each sub-env takes this many control steps). */
  warmupSteps: number;
  /** Vector steps per timed repeat. */
  steps: number;
  repeats: number;
  seed: number;
  frameSkip: number;
}

export async function measureVector(VectorEnv: VectorEnvClass, cfg: VectorConfig): Promise<VectorResult> {
  const runs: VectorRun[] = [];
  // All worker counts are open at once and their timed windows interleave (1, 2, 1, 2, ...): this machine's
  // speed drifts (other tenants' load shows up as CPU steal), and interleaving spreads the drift evenly over the
  // configurations being compared. An idle vector env's workers sleep in Atomics.wait and cost nothing.
  const opened: { workers: number; venv: VectorEnvLike; createSeconds: number }[] = [];
  const batches = 16;
  try {
    for (const workers of cfg.workers) {
      let venv: VectorEnvLike | undefined;
      const createSeconds = await timeAsync(async () => {
        venv = await VectorEnv.create({ task: cfg.task, numEnvs: cfg.numEnvs, workers });
      });
      opened.push({ workers, venv: venv!, createSeconds });
    }
    // A fixed pool of action batches, cycled: the same for every worker count.
    const first = opened[0]!.venv;
    const pool = randomActions(cfg.seed, batches * first.numEnvs, first.actDim);
    const size = first.numEnvs * first.actDim;
    const batch = (t: number): Float32Array =>
      pool.subarray((t % batches) * size, ((t % batches) + 1) * size);
    for (const { venv } of opened) {
      await venv.reset({ seed: cfg.seed });
      for (let t = 0; t < cfg.warmupSteps; t++) await venv.step(batch(t));
    }
    const rates = opened.map(() => [] as number[]);
    const cpuRates = opened.map(() => [] as number[]);
    for (let r = 0; r < cfg.repeats; r++) {
      for (let k = 0; k < opened.length; k++) {
        const v = opened[k]!.venv;
        const c0 = process.cpuUsage();
        const s = await timeAsync(async () => {
          for (let t = 0; t < cfg.steps; t++) await v.step(batch(t));
        });
        const c = process.cpuUsage(c0);
        rates[k]!.push((cfg.steps * v.numEnvs) / s);
        cpuRates[k]!.push((cfg.steps * v.numEnvs) / ((c.user + c.system) / 1e6));
      }
    }
    opened.forEach(({ workers, createSeconds }, k) => {
      const run: VectorRun = {
        workers,
        envStepsPerSec: median(rates[k]!),
        envStepsPerCpuSec: median(cpuRates[k]!),
        rates: rates[k]!,
        createSeconds,
      };
      runs.push(run);
      progress(
        `vector ${cfg.task} x${cfg.numEnvs}, ${workers} worker(s): ${Math.round(run.envStepsPerSec)} env steps/s ` +
          `(created in ${createSeconds.toFixed(2)} s)`,
      );
    });
  } finally {
    await Promise.all(opened.map(({ venv }) => venv.close()));
  }
  return {
    task: cfg.task,
    numEnvs: cfg.numEnvs,
    frameSkip: cfg.frameSkip,
    stepsPerRepeat: cfg.steps,
    runs,
  };
}
