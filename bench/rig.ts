/**
 * Rig round-trip benchmark: `npm run bench:rig [-- --seconds 10 --reward R --encoding jpeg|png --rates 10,30]`
 * (node bin/run-ts.js bench/rig.ts).
 *
 * A server in this process (ONNX MLP policy, the reward model, the episode store with fsync per step) and
 * `pbridge rig-sim` in a child process, paced at 10 Hz and at 30 Hz with 3 JPEG cameras (96x96; `--encoding png`
 * for PNG). Latency is what the rig sees: observation sent -> action received (encoding happens before the clock
 * starts, as on a robot whose camera driver hands over encoded frames). The server's own decision time (arrival
 * -> action decided, before the fsync) is read back from the store; the reward model decodes every frame it
 * reads (JPEG with our baseline decoder) off the action path.
 * Prints the figures as JSON and writes bench/results/rig.md (reassembling BENCHMARKS.md).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { BridgeServer } from '../src/bridge/server.ts';
import { makeEnv } from '../src/env/make.ts';
import { GraphBuilder } from '../src/onnx/builder.ts';
import { buildPolicyOnnx } from '../src/onnx/policy.ts';
import { PROGRESS_MODEL_FORMAT } from '../src/reward/onnx.ts';
import { DEFAULT_MODEL_PATH, openProgressModel } from '../src/reward/open-model.ts';
import { RewardService } from '../src/reward/service.ts';
import { listEpisodes, readEpisode } from '../src/rig/episode-store.ts';
import { loadRigPolicy } from '../src/rig/policy.ts';
import type { RigSimSummary } from '../src/rig/sim.ts';
import { writeSection } from './compose.ts';

const PBRIDGE = fileURLToPath(new URL('../bin/pbridge.js', import.meta.url));
const REPO = fileURLToPath(new URL('..', import.meta.url));

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    reward: { type: 'string' },
    size: { type: 'string', default: '96' },
    encoding: { type: 'string', default: 'jpeg' },
    rates: { type: 'string', default: '10,30' },
  },
});
const seconds = Number(values.seconds);
const rewardSource = values.reward ?? (existsSync(DEFAULT_MODEL_PATH) ? 'default' : 'tiny');

/**
 * `--reward tiny`: an ONNX progress model reading front, side and wrist at 64x64 whose progress is the mean pixel.
 * It stands in for the shipped model when that is not built: the pipeline (decode, resize, normalise,
 * onnxruntime, shaping) is the real one, only the network is trivial.
 */
function tinyProgressModel(dir: string): string {
  const g = new GraphBuilder('tiny-progress');
  const images = g.addInput('images', 'float32', ['B', 9, 64, 64]);
  g.addNode('ReduceMean', [images], {
    attributes: { axes: { ints: [1, 2, 3] }, keepdims: { i: 0 } },
    outputs: ['progress'],
  });
  g.addOutput('progress', 'float32', ['B']);
  g.setMetadata(
    'progress_bridge',
    JSON.stringify({
      format: PROGRESS_MODEL_FORMAT,
      images: {
        input: 'images',
        cameras: ['front', 'side', 'wrist'],
        height: 64,
        width: 64,
        layout: 'NCHW',
        scale: 1 / 255,
        mean: [0, 0, 0],
        std: [1, 1, 1],
      },
      outputs: { progress: 'progress' },
    }),
  );
  const path = join(dir, 'tiny-progress.onnx');
  writeFileSync(path, g.toBytes());
  return path;
}

/** A random-weight 2 x 64 tanh MLP with the documented policy signature: a policy's cost, not its skill. */
function mlpPolicyFile(dir: string, obsDim: number, actDim: number): string {
  let s = 12345;
  const rand = (): number => ((s = (s * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff - 0.5) * 0.2;
  const layer = (out: number, inp: number, activation: 'tanh' | 'none') => ({
    W: Array.from({ length: out * inp }, rand),
    b: Array.from({ length: out }, rand),
    activation,
  });
  const path = join(dir, 'bench-policy.onnx');
  writeFileSync(
    path,
    buildPolicyOnnx({
      obsDim,
      actDim,
      layers: [layer(64, obsDim, 'tanh'), layer(64, 64, 'tanh'), layer(actDim, 64, 'none')],
      obsMean: new Array(obsDim).fill(0),
      obsStd: new Array(obsDim).fill(1),
      obsClip: 10,
    }),
  );
  return path;
}

function pct(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
}

interface RateResult {
  rate_hz: number;
  steps: number;
  warmup_steps_excluded: number;
  late: number;
  rig_latency_ms: { p50: number; p99: number; max: number };
  server_decide_ms: { p50: number; p99: number };
  reward_latency_ms: { p50: number; p99: number };
  achieved_hz: number;
  episodes: number;
  stored_steps: number;
  scored_steps: number;
}

async function runAt(rateHz: number): Promise<RateResult> {
  const dir = mkdtempSync(join(tmpdir(), 'pb-bench-rig-'));
  const env = await makeEnv('push');
  const policyPath = mlpPolicyFile(dir, env.obsDim, env.actDim);
  env.close();
  const opened = await openProgressModel(rewardSource === 'tiny' ? tinyProgressModel(dir) : rewardSource);
  const service = new RewardService(opened.model, { maxWaitMs: 1 });
  const server = await BridgeServer.start({
    port: 0,
    token: 'bench',
    staticDir: false,
    rig: {
      storeDir: join(dir, 'store'),
      policy: await loadRigPolicy(policyPath),
      reward: { service, id: opened.model.id, cameras: opened.cameras, close: () => service.close() },
    },
  });
  const steps = Math.round(seconds * rateHz);
  const warmup = 20;
  // Episodes of 50 steps: shorter than the task's time limit, so every run has the same number of steps.
  const perEpisode = 50;
  const child = spawn(
    process.execPath,
    [
      PBRIDGE,
      'rig-sim',
      '--env',
      'push',
      '--url',
      server.wsUrl,
      '--token',
      'bench',
      '--rate',
      String(rateHz),
      '--cameras',
      'front,side,wrist',
      '--size',
      values.size!,
      '--encoding',
      values.encoding!,
      '--episodes',
      String(Math.ceil((steps + warmup) / perEpisode)),
      '--max-steps',
      String(perEpisode),
      '--warmup',
      String(warmup),
      '--json',
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((r) => child.on('exit', r));
  if (code !== 0) throw new Error(`rig-sim exited with ${code}`);
  const summary = JSON.parse(out) as RigSimSummary;
  const eps = await Promise.all((await listEpisodes(join(dir, 'store'))).map((d) => readEpisode(d)));
  const all = eps.flatMap((e) => e.steps);
  const decide = all
    .slice(warmup)
    .map((s) => s.decideMs)
    .sort((a, b) => a - b);
  const stats = service.stats();
  await server.close();
  rmSync(dir, { recursive: true, force: true });
  return {
    rate_hz: rateHz,
    steps: summary.steps,
    warmup_steps_excluded: warmup,
    late: summary.late,
    rig_latency_ms: { p50: summary.latencyMs.p50, p99: summary.latencyMs.p99, max: summary.latencyMs.max },
    server_decide_ms: { p50: pct(decide, 0.5), p99: pct(decide, 0.99) },
    reward_latency_ms: { p50: stats.latencyMs.p50, p99: stats.latencyMs.p99 },
    achieved_hz: summary.stepsPerS,
    episodes: summary.episodes,
    stored_steps: all.length,
    scored_steps: all.filter((s) => s.reward?.status === 'ok').length,
  };
}

const started = performance.now();
const load = loadavg()[0]!;
const results: RateResult[] = [];
for (const rate of values.rates!.split(',').map(Number)) results.push(await runAt(rate));
console.log(
  JSON.stringify(
    {
      bench: 'rig round trip (observation sent -> action received)',
      cameras: `3 x ${values.encoding} ${values.size}x${values.size}`,
      policy: 'ONNX MLP 2x64 tanh',
      reward: rewardSource,
      store: 'fsync per step before the action is sent',
      results,
    },
    null,
    2,
  ),
);

const cameras = `3 cameras (front, side, wrist), ${values.encoding!.toUpperCase()} ${values.size}x${values.size}`;
const args = process.argv.slice(2);
const ms = (x: number): string => x.toFixed(2);
const md = [
  '## Rig round trip',
  '',
  `Written by \`npm run bench:rig${args.length ? ` -- ${args.join(' ')}` : ''}\` (bench/rig.ts) in ${((performance.now() - started) / 1000).toFixed(0)} s on ${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, 1-minute load ${load.toFixed(2)} at the start.`,
  '',
  `A bridge server in the benchmark's process (a random-weight ONNX MLP policy, 2 x 64 tanh; the \`${rewardSource}\` progress model behind the reward service; the episode store, fsync per step before the action is sent) and \`pbridge rig-sim\` on the push task in a child process, paced at each rate with ${cameras}, episodes of 50 steps, ${seconds} s per rate, the first 20 steps excluded as warm-up. Round trip: what the rig sees, observation sent -> action received (the frames are encoded before the clock starts, as from a camera driver that hands over encoded frames). Achieved rate: all steps over the rig's whole wall time, warm-up and the resets between episodes included (within an episode the rig paces on an absolute clock, so a slow step is made up when the next ones are quick). Late: actions the server flagged as missing the step's deadline (the rig held its previous command), all steps counted. Server decide: arrival -> action decided, before the fsync, read back from the store. The reward model decodes the frames off the action path.`,
  '',
  '| target rate | achieved rate | achieved / target | round trip p50 ms | round trip p99 ms | max ms | p99 / period | late actions | server decide p50 / p99 ms | reward answer p50 / p99 ms | steps scored |',
  '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ...results.map(
    (r) =>
      `| ${r.rate_hz} Hz | ${r.achieved_hz.toFixed(2)} Hz | ${(r.achieved_hz / r.rate_hz).toFixed(2)}x | ${ms(r.rig_latency_ms.p50)} | ${ms(r.rig_latency_ms.p99)} | ${ms(r.rig_latency_ms.max)} | ${((r.rig_latency_ms.p99 * r.rate_hz) / 1000).toFixed(2)} | ${r.late} of ${r.steps} | ${ms(r.server_decide_ms.p50)} / ${ms(r.server_decide_ms.p99)} | ${ms(r.reward_latency_ms.p50)} / ${ms(r.reward_latency_ms.p99)} | ${r.scored_steps} of ${r.stored_steps} |`,
  ),
  '',
  "Ratios: achieved / target is the rate held against the rate asked for; p99 / period is the slow tail of the round trip as a share of one control period (below 1 leaves the rest of the period to the robot). The rig, the server and the reward model share this machine's cores with each other and with whatever else runs (see the load above), so the tails are the shared machine's.",
].join('\n');
process.stderr.write(`wrote ${writeSection(REPO, 'rig.md', md)}\n`);
