/**
 * Remote-learner throughput: env steps/s of a vector env driven over the bridge (loopback WebSocket, the
 * TypeScript client, and the Python client when numpy and msgpack are there) against the same task, N and worker
 * count run in process. Reports each as a ratio to in-process. A second remote configuration shapes rewards with
 * the oracle model, which shows the cost of waiting for the model's answers before replying (the oracle answers
 * at once, so what is left is the reward service's batching delay and bookkeeping).
 *
 *   npm run bench:remote-learner [-- --task=push --envs=16 --workers=2 --steps=200 --repeats=5]
 *   (node bin/run-ts.js bench/remote-learner.ts)
 *
 * Configurations are timed in interleaved windows (in-process, remote, remote+oracle, in-process, ...) so the
 * drift of a shared machine spreads evenly over them; the figure is the median window.
 * Prints the figures, keeps them in bench/out/remote-learner.json and writes bench/results/remote-learner.md
 * (reassembling BENCHMARKS.md).
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { BridgeServer } from '../src/bridge/server.ts';
import { RemoteVectorEnv } from '../src/clients/remote-vector-env.ts';
import { VectorEnv } from '../src/vector/vector-env.ts';
import { randomActions } from './replay.ts';
import { median, progress } from './stats.ts';
import { writeSection } from './compose.ts';

const REPO = fileURLToPath(new URL('..', import.meta.url));

const args = process.argv.slice(2);
const option = (name: string, fallback: string): string =>
  args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;

const task = option('task', 'push');
const numEnvs = Number(option('envs', '16'));
const workers = Number(option('workers', String(Math.min(numEnvs, availableParallelism()))));
const steps = Number(option('steps', '200'));
const repeats = Number(option('repeats', '5'));
const warmup = Number(option('warmup', '150'));
const TOKEN = 'bench-remote-learner';

interface Stepper {
  name: string;
  actDim: number;
  reset(seed: number): Promise<unknown>;
  step(actions: Float32Array): Promise<unknown>;
  close(): Promise<void>;
}

async function timeWindow(s: Stepper, pool: Float32Array, batches: number, from: number): Promise<number> {
  const per = numEnvs * s.actDim;
  const t0 = performance.now();
  for (let t = 0; t < steps; t++) {
    const k = (from + t) % batches;
    await s.step(pool.subarray(k * per, (k + 1) * per));
  }
  return (steps * numEnvs) / ((performance.now() - t0) / 1000);
}

const PYTHON_BENCH = `
import sys, time, numpy as np
sys.path.insert(0, "clients/python")
from progress_bridge import RemoteVectorEnv
url, token, task, n, steps, warmup, repeats = sys.argv[1], sys.argv[2], sys.argv[3], *map(int, sys.argv[4:8])
env = RemoteVectorEnv(url, token, task, n, autoreset_mode="same-step")
env.reset(seed=1)
rng = np.random.default_rng(1)
pool = rng.uniform(-1, 1, size=(16, n, env.act_dim)).astype(np.float32)
for t in range(warmup): env.step(pool[t % 16])
rates = []
for r in range(repeats):
    t0 = time.perf_counter()
    for t in range(steps): env.step(pool[t % 16])
    rates.append(steps * n / (time.perf_counter() - t0))
env.close()
print(sorted(rates)[len(rates) // 2])
`;

function runAsync(
  cmd: string,
  argv: string[],
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

async function main(): Promise<void> {
  const started = performance.now();
  const load = loadavg()[0]!;
  progress(
    `remote learner: ${task}, ${numEnvs} envs, ${workers} workers, ${steps} steps x ${repeats} windows`,
  );
  const server = await BridgeServer.start({
    port: 0,
    token: TOKEN,
    staticDir: false,
    learner: { workersPerBatch: workers, maxBatches: 4 },
  });
  const local = await VectorEnv.create({ task, numEnvs, workers, autoreset: 'same-step' });
  const remote = await RemoteVectorEnv.create({
    url: server.wsUrl,
    token: TOKEN,
    task,
    numEnvs,
    autoreset: 'same-step',
  });
  const shaped = await RemoteVectorEnv.create({
    url: server.wsUrl,
    token: TOKEN,
    task,
    numEnvs,
    autoreset: 'same-step',
    reward: 'oracle',
    gamma: 0.99,
  });
  const steppers: Stepper[] = [
    {
      name: 'in-process VectorEnv',
      actDim: local.actDim,
      reset: (s) => local.reset({ seed: s }),
      step: (a) => local.step(a),
      close: () => local.close(),
    },
    {
      name: 'remote (TypeScript client)',
      actDim: remote.actDim,
      reset: (s) => remote.reset({ seed: s }),
      step: (a) => remote.step(a),
      close: () => remote.close(),
    },
    {
      name: 'remote + oracle shaping',
      actDim: shaped.actDim,
      reset: (s) => shaped.reset({ seed: s }),
      step: (a) => shaped.step(a),
      close: () => shaped.close(),
    },
  ];
  const batches = 16;
  const pool = randomActions(1, batches * numEnvs, local.actDim);
  const rates = steppers.map(() => [] as number[]);
  try {
    for (const s of steppers) {
      await s.reset(1);
      // WASM runs slowly until V8 tiers it up (DESIGN.md): warm every configuration before timing.
      const per = numEnvs * s.actDim;
      for (let t = 0; t < warmup; t++)
        await s.step(pool.subarray((t % batches) * per, ((t % batches) + 1) * per));
    }
    for (let r = 0; r < repeats; r++) {
      for (let i = 0; i < steppers.length; i++)
        rates[i]!.push(await timeWindow(steppers[i]!, pool, batches, r * 7));
      progress(`window ${r + 1}/${repeats}: ${rates.map((x) => x.at(-1)!.toFixed(0)).join(' / ')} steps/s`);
    }
  } finally {
    for (const s of steppers) await s.close();
  }
  const base = median(rates[0]!);
  const rows: { name: string; stepsPerSec: number; ratio: number }[] = steppers.map((s, i) => ({
    name: s.name,
    stepsPerSec: median(rates[i]!),
    ratio: median(rates[i]!) / base,
  }));

  // The Python client, in its own process (numpy + msgpack), timed after the others on the same server.
  const hasPython =
    spawnSync('/usr/bin/python3', ['-c', 'import numpy, msgpack'], { stdio: 'ignore' }).status === 0;
  if (hasPython) {
    // Asynchronous: the server answering the client runs on this process's event loop.
    const py = await runAsync('/usr/bin/python3', [
      '-c',
      PYTHON_BENCH,
      server.wsUrl,
      TOKEN,
      task,
      String(numEnvs),
      String(steps),
      String(warmup),
      String(repeats),
    ]);
    const rate = Number(py.stdout.trim());
    if (py.status === 0 && Number.isFinite(rate)) {
      rows.push({ name: 'remote (Python client)', stepsPerSec: rate, ratio: rate / base });
    } else {
      progress(`python client bench failed: ${py.stderr.slice(-500)}`);
    }
  }
  await server.close();

  const lines = [
    `remote learner vs in-process, ${task}, N=${numEnvs}, ${workers} workers, same-step autoreset (median of ${repeats} windows of ${steps} steps):`,
    ...rows.map(
      (r) =>
        `  ${r.name.padEnd(28)} ${r.stepsPerSec.toFixed(0).padStart(7)} env steps/s   ratio ${r.ratio.toFixed(2)}`,
    ),
  ];
  console.log(lines.join('\n'));
  mkdirSync('bench/out', { recursive: true });
  writeFileSync(
    'bench/out/remote-learner.json',
    `${JSON.stringify({ task, numEnvs, workers, steps, repeats, rows, date: new Date().toISOString() }, null, 2)}\n`,
  );

  const md = [
    '## Remote learner',
    '',
    `Written by \`npm run bench:remote-learner${args.length ? ` -- ${args.join(' ')}` : ''}\` (bench/remote-learner.ts) in ${((performance.now() - started) / 1000).toFixed(0)} s on ${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, 1-minute load ${load.toFixed(2)} at the start.`,
    '',
    `Env steps/s of \`${task}\` with N = ${numEnvs} envs on ${workers} workers, same-step autoreset, random actions, stepped by a learner over the bridge (loopback WebSocket, server in the benchmark's process) against the same task, N and workers as an in-process VectorEnv (the baseline). Medians of ${repeats} interleaved windows of ${steps} vector steps, after ${warmup} warm-up steps per configuration. "Remote + oracle shaping" also has the server shape rewards with the oracle progress model (which answers at once), so what it adds is the reward service's batching delay and bookkeeping.${hasPython ? ' The Python client (numpy + msgpack, its own process) is timed after the others on the same server.' : ' The Python client was not timed: python3 with numpy and msgpack was not found.'}`,
    '',
    '| configuration | env steps/s (median) | vs in-process | windows, slowest to fastest |',
    '|---|---:|---:|---:|',
    ...rows.map((r, i) => {
      const w = rates[i];
      const spread = w ? `${Math.min(...w).toFixed(0)} to ${Math.max(...w).toFixed(0)}` : 'median only';
      return `| ${r.name} | ${r.stepsPerSec.toFixed(0)} | ${r.ratio.toFixed(2)}x | ${spread} |`;
    }),
    '',
    'On a shared machine the windows spread widely; the ratio of medians is the figure, the spread says how far to trust it.',
  ].join('\n');
  progress(`wrote ${writeSection(REPO, 'remote-learner.md', md)}`);
}

await main();
