/**
 * Section 2b: WASM heap per env. Runs in a child process per task (a fresh module: the heap never shrinks, so
 * readings in a module that already held other envs would be wrong):
 *
 *   node bin/run-ts.js bench/memory.ts TASK SAMPLE [fill]
 *
 * Creates SAMPLE envs on one compiled model and reports the heap growth per env; with `fill`, keeps creating
 * envs until the module's heap limit stops it, which counts how many fit in one worker. Prints one JSON line.
 */
import { ManipulationEnv } from '../src/env/env.ts';
import { makeEnv } from '../src/env/make.ts';
import { resolveTask } from '../src/env/registry.ts';
import { loadMujoco, type Mujoco } from '../src/sim/mujoco.ts';

export interface MemoryResult {
  task: string;
  /** Heap of a fresh module (bytes). */
  heapModule: number;
  /** Heap with the model compiled and one env made. */
  heapFirstEnv: number;
  /** Heap growth per env over the sample, bytes. */
  perEnvBytes: number;
  sample: number;
  /** MjData arena + buffer bytes (what mj_makeData allocates). */
  dataBytes: number;
  /** The module's heap limit (emscripten's getHeapMax: 2 GiB in this build). */
  heapMax: number;
  /** Envs one module held before allocation failed (fill mode), counting the first. */
  filled?: number;
  fillError?: string;
  fillSeconds?: number;
}

/** Current size of the module's heap: any heap view's underlying buffer is the whole WASM memory. */
function heapBytes(mj: Mujoco): number {
  const b = new mj.DoubleBuffer(1);
  try {
    return (b.GetView() as Float64Array).buffer.byteLength;
  } finally {
    b.delete();
  }
}

async function main(): Promise<void> {
  const [task, sampleArg, mode] = process.argv.slice(2);
  if (!task) throw new Error('usage: memory.ts TASK SAMPLE [fill]');
  const sample = Number(sampleArg ?? 64);
  const mj = await loadMujoco();
  const heapModule = heapBytes(mj);
  const first = await makeEnv(task);
  const def = await resolveTask(task);
  const heapFirstEnv = heapBytes(mj);
  const envs: ManipulationEnv[] = [first];
  for (let i = 0; i < sample; i++) envs.push(new ManipulationEnv(mj, first.model, def));
  const heapSample = heapBytes(mj);
  const result: MemoryResult = {
    task,
    heapModule,
    heapFirstEnv,
    perEnvBytes: (heapSample - heapFirstEnv) / sample,
    sample,
    dataBytes: first.data.narena + first.data.nbuffer,
    heapMax: 2 ** 31,
  };
  if (mode === 'fill') {
    const t0 = performance.now();
    try {
      for (let i = 0; i < 100_000; i++) envs.push(new ManipulationEnv(mj, first.model, def));
    } catch (err) {
      result.fillError = String(err instanceof Error ? err.message : err).slice(0, 200);
    }
    result.filled = envs.length;
    result.fillSeconds = (performance.now() - t0) / 1000;
  }
  console.log(JSON.stringify(result));
  process.exit(0);
}

// A script: bench/run.ts imports only its types.
await main();
