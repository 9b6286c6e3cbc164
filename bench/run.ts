/**
 * `npm run bench`: simulation benchmarks, written to bench/results/sim.md and so into BENCHMARKS.md.
 *
 * 1. Env layer overhead per task against the raw mj_step loop on the same model, state and ctrl.
 * 2. Vector env throughput at 1 and 2 workers; WASM heap per env and envs per 2 GiB module.
 * 3. Raw WASM loop against native MuJoCo C on the same (down-converted) MJCF.
 * 4. Camera rendering: frames/s per core at several sizes, and render time against physics time per step.
 *
 * Options: --tasks=a,b  --quick  --no-vector  --no-native  --no-memory  --no-render  --out=FILE
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { writeSection } from './compose.ts';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { resolveTask, TASK_NAMES } from '../src/env/registry.ts';
import type { TaskDefinition } from '../src/env/task.ts';
import { loadMujoco } from '../src/sim/mujoco.ts';
import { measureOverhead, type OverheadResult } from './env-overhead.ts';
import type { MemoryResult } from './memory.ts';
import { buildNative, measureNative, NATIVE_HOWTO, REPO_ROOT, type NativeResult } from './native.ts';
import { measureRender, type RenderBenchResult } from './render.ts';
import { renderReport, type Machine, type Report } from './report.ts';
import { progress } from './stats.ts';
import { loadVectorEnv, measureVector, VECTOR_ENV_PATH } from './vector.ts';

const args = process.argv.slice(2);
const flag = (name: string): boolean => args.includes(`--${name}`);
const option = (name: string): string | undefined =>
  args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);

const quick = flag('quick');
const SEED = 1;
const overheadConfig = { controlSteps: quick ? 300 : 600, repeats: quick ? 3 : 7, seed: SEED };
const nativeConfig = { repeats: quick ? 3 : 7, warmupSteps: 3000 };
const renderConfig = { sizes: [96, 128, 224], states: quick ? 12 : 30, repeats: quick ? 3 : 5, seed: SEED };
const RENDER_TASKS = ['push', 'pick-place'];
const VECTOR_TASK = 'push';
const VECTOR_ENVS = 16;
const outFile = option('out');

function machine(): Machine {
  let cpu = cpus()[0]?.model ?? 'unknown';
  try {
    cpu = /model name\s*:\s*(.+)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? cpu;
  } catch {
    // not Linux: keep os.cpus()
  }
  let nproc = availableParallelism();
  try {
    nproc = Number(execFileSync('nproc', { encoding: 'utf8' }).trim());
  } catch {
    // no coreutils: keep availableParallelism()
  }
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
      encoding: 'utf8',
      stdio: 'pipe',
    }).trim();
  } catch {
    // not a git checkout
  }
  const pkg = JSON.parse(
    readFileSync(join(REPO_ROOT, 'node_modules/@mujoco/mujoco/package.json'), 'utf8'),
  ) as { version: string };
  return {
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    cpu,
    nproc,
    node: process.version,
    mujocoWasm: 'unknown',
    wasmPackage: pkg.version,
    commit,
    loadBefore: loadavg()[0]!,
    loadAfter: NaN,
  };
}

function measureMemory(task: string): MemoryResult | undefined {
  try {
    const out = execFileSync(
      process.execPath,
      [join(REPO_ROOT, 'bin/run-ts.js'), join(REPO_ROOT, 'bench/memory.ts'), task, '32', 'fill'],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 },
    );
    return JSON.parse(out.trim().split('\n').pop()!) as MemoryResult;
  } catch (err) {
    progress(`memory ${task}: failed (${(err as Error).message.split('\n')[0]})`);
    return undefined;
  }
}

async function main(): Promise<void> {
  const t0 = performance.now();
  const m = machine();
  progress(
    `${m.cpu}, ${m.nproc} cores, node ${m.node}, @mujoco/mujoco ${m.wasmPackage}, load ${m.loadBefore.toFixed(2)}`,
  );
  const mj = await loadMujoco();
  m.mujocoWasm = mj.mj_versionString();

  const wanted = option('tasks')?.split(',') ?? [...TASK_NAMES];
  const skipped: string[] = [];
  const tasks: TaskDefinition[] = [];
  for (const name of wanted) {
    try {
      tasks.push(await resolveTask(name));
    } catch (err) {
      const why = (err as Error).message.split('\n')[0]!;
      skipped.push(`task \`${name}\`: not available (${why})`);
      progress(`skipping task ${name}: not available yet (${why})`);
    }
  }

  // 1. Env layer overhead.
  const overhead: OverheadResult[] = [];
  for (const task of tasks) {
    progress(
      `env overhead: ${task.name} (${overheadConfig.controlSteps} control steps x ${overheadConfig.repeats})`,
    );
    try {
      overhead.push(await measureOverhead(task.name, overheadConfig));
    } catch (err) {
      skipped.push(`env overhead of \`${task.name}\` failed: ${(err as Error).message.split('\n')[0]}`);
      progress(`env overhead ${task.name} failed: ${(err as Error).stack}`);
    }
  }

  // 2. Vector env scaling.
  const report: Report = {
    machine: m,
    seconds: 0,
    command: `npm run bench${args.length ? ` -- ${args.join(' ')}` : ''}`,
    skipped,
    overhead,
    overheadConfig,
    memory: [],
    native: [],
    render: [],
    renderConfig,
  };
  if (flag('no-vector')) {
    report.vectorNote = 'skipped with --no-vector';
  } else {
    const VectorEnv = await loadVectorEnv();
    const vtask = tasks.find((t) => t.name === VECTOR_TASK) ?? tasks[0];
    if (!VectorEnv) {
      report.vectorNote = `${VECTOR_ENV_PATH} does not exist yet`;
      progress(`skipping vector env: ${report.vectorNote}`);
    } else if (!vtask) {
      report.vectorNote = 'no task available';
    } else {
      if (vtask.name !== VECTOR_TASK)
        progress(`vector env: ${VECTOR_TASK} not available, using ${vtask.name}`);
      try {
        report.vector = await measureVector(VectorEnv, {
          task: vtask.name,
          numEnvs: VECTOR_ENVS,
          workers: [1, 2],
          // Each worker thread tiers up its own copy of the WASM code: warm every worker well past that.
          warmupSteps: quick ? 40 : 150,
          steps: quick ? 20 : 60,
          repeats: quick ? 3 : 7,
          seed: SEED,
          frameSkip: overhead.find((o) => o.task === vtask.name)?.frameSkip ?? vtask.frameSkip ?? 20,
        });
      } catch (err) {
        report.vectorNote = `failed: ${(err as Error).message.split('\n')[0]}`;
        progress(`vector env failed: ${(err as Error).stack}`);
      }
    }
  }
  if (!flag('no-memory')) {
    for (const task of tasks) {
      progress(`memory: ${task.name} (fresh module in a child process, filled to its 2 GiB limit)`);
      const r = measureMemory(task.name);
      if (r) {
        report.memory.push(r);
        progress(
          `memory ${task.name}: ${(r.perEnvBytes / 2 ** 20).toFixed(2)} MiB heap per env, ${r.filled ?? '?'} envs per module`,
        );
      }
    }
  }

  // 3. Native baseline.
  if (flag('no-native')) {
    report.nativeNote = 'skipped with --no-native';
  } else {
    const build = buildNative();
    report.nativeBuild = build;
    if (!build.ok) {
      report.nativeNote = `${build.reason}; to enable: ${NATIVE_HOWTO}`;
      progress(`native baseline skipped: ${report.nativeNote}`);
    } else {
      const results: NativeResult[] = [];
      for (const o of overhead) {
        const def = tasks.find((t) => t.name === o.task)!;
        progress(`native vs WASM: ${o.task}`);
        try {
          const r = await measureNative(o.task, def.scenePath, o.replay, nativeConfig);
          if (r.error) progress(`native ${o.task}: ${r.error}`);
          results.push(r);
        } catch (err) {
          progress(`native ${o.task} failed: ${(err as Error).stack}`);
          results.push({ task: o.task, changes: [], convertedPath: '', error: (err as Error).message });
        }
      }
      report.native = results;
    }
  }

  // 4. Rendering.
  if (flag('no-render')) {
    report.renderNote = 'skipped with --no-render';
  } else {
    const results: RenderBenchResult[] = [];
    for (const name of RENDER_TASKS) {
      if (!tasks.some((t) => t.name === name)) continue;
      progress(`render: ${name} (${renderConfig.states} states x ${renderConfig.repeats} repeats per size)`);
      try {
        results.push(await measureRender(name, renderConfig));
      } catch (err) {
        skipped.push(`rendering of \`${name}\` failed: ${(err as Error).message.split('\n')[0]}`);
        progress(`render ${name} failed: ${(err as Error).stack}`);
      }
    }
    report.render = results;
    if (results.length === 0) report.renderNote = `none of ${RENDER_TASKS.join(', ')} selected with --tasks`;
  }

  m.loadAfter = loadavg()[0]!;
  report.seconds = (performance.now() - t0) / 1000;
  if (outFile) {
    writeFileSync(outFile, renderReport(report));
    progress(`wrote ${outFile}`);
  } else {
    progress(`wrote ${writeSection(REPO_ROOT, 'sim.md', renderReport(report))}`);
  }
}

await main();
