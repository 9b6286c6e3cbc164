/**
 * Bridge benchmark: `npm run bench:bridge [-- --seconds 5 --envs 4]` (node bin/run-ts.js bench/bridge.ts).
 *
 * 1. Bytes per pose frame and encode + decode (with schema validation) cost per frame, for the push scene.
 * 2. One server feeding 1, 10 and 50 loopback viewers at 30 Hz: delivered frames per second per viewer, drops,
 *    and the server process's CPU. The viewers run in a child process so the server's CPU figure is its own.
 * Prints the figures and writes bench/results/bridge.md (reassembling BENCHMARKS.md).
 */
import { fork } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { BridgeClient } from '../src/bridge/client.ts';
import { PoseReader, sceneFromModel } from '../src/bridge/scene-source.ts';
import { BridgeServer } from '../src/bridge/server.ts';
import { makeEnv } from '../src/env/make.ts';
import { decodeMessage, encodeMessage, fromTensor, toTensor } from '../src/protocol/index.ts';
import { writeSection } from './compose.ts';

const RUN_TS = fileURLToPath(new URL('../bin/run-ts.js', import.meta.url));
const REPO = fileURLToPath(new URL('..', import.meta.url));

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '5' },
    envs: { type: 'string', default: '4' },
    clients: { type: 'string' },
    url: { type: 'string' },
  },
});

/** Child mode: N viewers that count frames until told to report. */
async function runClients(n: number, url: string): Promise<void> {
  const viewers = await Promise.all(
    Array.from({ length: n }, () => BridgeClient.connect(url, { role: 'viewer', client: 'bench' })),
  );
  const counts = viewers.map(() => 0);
  viewers.forEach((v, i) =>
    v.ws.on('message', () => {
      counts[i]!++;
    }),
  );
  process.send!({ ready: true });
  process.on('message', (m: { report?: boolean }) => {
    if (!m.report) return;
    process.send!({ counts: [...counts] });
    for (const v of viewers) v.ws.terminate();
    process.exit(0);
  });
  process.on('message', (m: { reset?: boolean }) => {
    if (m.reset) counts.fill(0);
  });
}

interface FanOutRow {
  viewers: number;
  meanRate: number;
  minRate: number;
  dropped: number;
  cpuPct: number;
}

async function main(): Promise<void> {
  const started = performance.now();
  const load = loadavg()[0]!;
  const seconds = Number(values.seconds);
  const nenv = Number(values.envs);
  const env = await makeEnv('push');
  env.reset({ seed: 0 });
  const reader = new PoseReader(env.model.nbody).read(env.data);
  const scene = sceneFromModel(env.mj, env.model, {
    name: 'push',
    envIds: Array.from({ length: nenv }, (_, i) => i),
  });

  // 1. Bytes and codec cost.
  const frame = {
    type: 'frame' as const,
    sceneId: 1,
    env: 0,
    seq: 1,
    time: 0.5,
    pos: toTensor(reader.pos, [env.model.nbody, 3]),
    quat: toTensor(reader.quat, [env.model.nbody, 4]),
  };
  const bytes = encodeMessage(frame);
  const sceneBytes = encodeMessage({ type: 'scene', sceneId: 1, ...scene }).length;
  const N = 20_000;
  for (let i = 0; i < 2000; i++) decodeMessage(encodeMessage(frame)); // warm-up: V8 tiers up
  let t = performance.now();
  for (let i = 0; i < N; i++) encodeMessage(frame);
  const encodeUs = ((performance.now() - t) * 1000) / N;
  t = performance.now();
  for (let i = 0; i < N; i++) {
    const m = decodeMessage(bytes);
    if (m.type === 'frame') fromTensor(m.pos);
  }
  const decodeUs = ((performance.now() - t) * 1000) / N;
  console.log(`push scene: ${env.model.nbody} bodies, scene message ${(sceneBytes / 1024).toFixed(1)} KiB`);
  console.log(
    `frame: ${bytes.length} bytes/env; encode ${encodeUs.toFixed(2)} us, decode+validate ${decodeUs.toFixed(2)} us per frame`,
  );

  // 2. Fan-out at 30 Hz.
  console.log(
    `\nfan-out: ${nenv} envs at 30 Hz (${nenv * bytes.length} bytes per tick per viewer), ${seconds} s per run`,
  );
  console.log(
    'viewers | delivered frames/s per viewer (mean, min; ideal ' + 30 * nenv + ') | dropped | server CPU',
  );
  const rows: FanOutRow[] = [];
  for (const n of [1, 10, 50]) {
    const server = await BridgeServer.start({ port: 0, rateHz: 30, staticDir: false, token: 'bench' });
    server.hub.setScene(scene);
    const producer = setInterval(() => {
      for (let e = 0; e < nenv; e++) {
        reader.pos[3] = Math.random(); // a changed pose each tick
        server.hub.poses(e, reader.pos, reader.quat, performance.now() / 1000);
      }
    }, 1000 / 60);
    const child = fork(RUN_TS, [
      fileURLToPath(import.meta.url),
      '--clients',
      String(n),
      '--url',
      server.wsUrl,
    ]);
    await new Promise<void>((r) => child.once('message', () => r()));
    await new Promise((r) => setTimeout(r, 500));
    const dropped0 = server.connections().reduce((a, c) => a + c.framesDropped, 0);
    child.send({ reset: true });
    const cpu0 = process.cpuUsage();
    const w0 = performance.now();
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const cpu = process.cpuUsage(cpu0);
    const wall = (performance.now() - w0) / 1000;
    const dropped = server.connections().reduce((a, c) => a + c.framesDropped, 0) - dropped0;
    child.send({ report: true });
    const { counts } = await new Promise<{ counts: number[] }>((r) =>
      child.once('message', (m) => r(m as never)),
    );
    clearInterval(producer);
    await server.close();
    // Each viewer also receives ~1 telemetry message per second; subtract it.
    const rates = counts.map((c) => (c - wall) / wall);
    const mean = rates.reduce((a, b) => a + b, 0) / rates.length;
    const cpuPct = ((cpu.user + cpu.system) / 1e6 / wall) * 100;
    console.log(
      `${String(n).padStart(7)} | ${mean.toFixed(1).padStart(6)}, ${Math.min(...rates)
        .toFixed(1)
        .padStart(6)} | ${String(dropped).padStart(7)} | ${cpuPct.toFixed(1)}% of one core`,
    );
    rows.push({ viewers: n, meanRate: mean, minRate: Math.min(...rates), dropped, cpuPct });
  }
  const nbody = env.model.nbody;
  env.close();

  const ideal = 30 * nenv;
  const args = process.argv.slice(2);
  const md = [
    '## Bridge: frame codec and viewer fan-out',
    '',
    `Written by \`npm run bench:bridge${args.length ? ` -- ${args.join(' ')}` : ''}\` (bench/bridge.ts) in ${((performance.now() - started) / 1000).toFixed(0)} s on ${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, 1-minute load ${load.toFixed(2)} at the start. Scene: \`push\` (${nbody} bodies; scene message ${(sceneBytes / 1024).toFixed(1)} KiB, sent once per viewer).`,
    '',
    '### Pose frame size and codec cost',
    '',
    "One pose frame carries one env's body positions and quaternions (float32). Encode: msgpack; decode: msgpack plus the protocol's runtime schema validation and the tensor view. Mean of 20,000 after 2,000 warm-up round trips.",
    '',
    '| bytes per frame | encode us per frame | decode + validate us per frame | encode + decode us per frame |',
    '|---:|---:|---:|---:|',
    `| ${bytes.length} | ${encodeUs.toFixed(2)} | ${decodeUs.toFixed(2)} | ${(encodeUs + decodeUs).toFixed(2)} |`,
    '',
    '### One server feeding loopback viewers at 30 Hz (target: 50 viewers held at 30 Hz)',
    '',
    `One server sending ${nenv} envs at 30 Hz (${nenv * bytes.length} bytes per tick per viewer; ideal ${ideal} frames/s per viewer) to 1, 10 and 50 WebSocket viewers on loopback, ${seconds} s per run. A timer in the server's process writes new poses at about 60 Hz; the server takes the newest pose of each env once per 30 Hz tick, encodes it once, and sends it to every viewer. The viewers run in a child process, so the server CPU is the server process's own (% of one core, the pose writer included); on this machine the child and the server share the same cores. Delivered: frames received per viewer per second (the ~1 telemetry message per second subtracted). Dropped: tick frames a viewer never got because a newer one replaced it while its socket was congested (latest-frame backpressure), all viewers together.`,
    '',
    '| viewers | delivered frames/s per viewer (mean) | slowest viewer | delivered / ideal (mean) | slowest / ideal | dropped | server CPU |',
    '|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${r.viewers} | ${r.meanRate.toFixed(1)} | ${r.minRate.toFixed(1)} | ${(r.meanRate / ideal).toFixed(2)}x | ${(r.minRate / ideal).toFixed(2)}x | ${r.dropped} | ${r.cpuPct.toFixed(1)}% |`,
    ),
    '',
    "The browser viewer's own frame rate (a 16-env grid) is not measured by this script.",
  ].join('\n');
  console.log(`\nwrote ${writeSection(REPO, 'bridge.md', md)}`);
}

if (values.clients) await runClients(Number(values.clients), values.url!);
else await main();
