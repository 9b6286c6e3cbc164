/**
 * `npm run bench:providers [-- --providers webgpu,cuda] [--batches 1,16,64,256] [--threads N]`: the default progress
 * model through the runtime's own loader (OnnxProgressModel, the `--providers` path of `pbridge train`) on each
 * execution provider asked for, against onnxruntime-node's CPU provider in the same run:
 *  - agreement: the largest progress difference from the CPU session on the same random states of every task;
 *  - throughput: states/s by batch size, as `predict` is called by the reward service (pixels in, answers out).
 * A provider that does not open here is reported as such with onnxruntime's reason; the figures are then CPU only.
 * The runtime passes over a provider whose answers are more than `providerTolerance` (1e-3) from the CPU's; this
 * benchmark opens it anyway (tolerance 1) to measure it, and reports what the runtime's default would decide.
 * Writes bench/results/providers.md and reassembles BENCHMARKS.md.
 */
import { spawnSync } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Rng } from '../src/env/rng.ts';
import type { ProgressRequest } from '../src/reward/model.ts';
import { OnnxProgressModel, randomViews } from '../src/reward/onnx.ts';
import { writeSection } from './compose.ts';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const MODEL = `${REPO}models/default-progress.onnx`;
const { values } = parseArgs({
  options: {
    providers: { type: 'string', default: 'webgpu' },
    batches: { type: 'string', default: '1,16,64,256' },
    threads: { type: 'string' },
    seconds: { type: 'string', default: '2' },
  },
});
const batches = values.batches.split(',').map(Number);
const others = values.providers.split(',').filter((p) => p && p !== 'cpu');
const allThreads = Number(values.threads ?? cpus().length);
const minSeconds = Number(values.seconds);
const log = (s: string): void => void process.stderr.write(`${s}\n`);
/** The GPUs nvidia-smi lists, or none. */
const gpus = ((): string => {
  const r = spawnSync('nvidia-smi', ['--query-gpu=name', '--format=csv,noheader'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim().split('\n').join(', ') : 'no GPU';
})();

function randomRequests(model: OnnxProgressModel, n: number, rng: Rng): ProgressRequest[] {
  const instructions = model.spec.task?.instructions ?? ['any'];
  return randomViews(model.spec.images, n, rng).map((views, i) => ({
    instruction: instructions[i % instructions.length]!,
    views,
    envId: 0,
    episodeId: 0,
    step: i,
  }));
}

/** Mean seconds per call over at least `minSeconds`, after warm-up calls. */
async function timePerCall(fn: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < 3; i++) await fn();
  let n = 0;
  const t0 = performance.now();
  for (;;) {
    await fn();
    n++;
    const dt = (performance.now() - t0) / 1000;
    if (dt >= minSeconds) return dt / n;
  }
}

const maxBatch = Math.max(...batches);
const cpu1 = await OnnxProgressModel.load(MODEL, { executionProviders: ['cpu'], maxBatch });
const cpuN = await OnnxProgressModel.load(MODEL, {
  executionProviders: ['cpu'],
  intraOpThreads: allThreads,
  maxBatch,
});
interface Opened {
  name: string;
  model?: OnnxProgressModel;
  reason?: string;
}
const opened: Opened[] = [];
for (const p of others) {
  const warnings: string[] = [];
  const m = await OnnxProgressModel.load(MODEL, {
    executionProviders: [p, 'cpu'],
    maxBatch,
    providerTolerance: 1,
    warn: (w) => warnings.push(w),
  });
  if (m.provider === p) opened.push({ name: p, model: m });
  else {
    opened.push({ name: p, reason: warnings.join('; ') });
    await m.close();
  }
  log(`${p}: ${m.provider === p ? 'opened' : `not available (${warnings.join('; ')})`}`);
}

const rng = new Rng(7);
const agreement: string[] = [];
const probe = randomRequests(cpu1, 5 * 64, rng);
const reference = await cpu1.predict(probe);
for (const o of opened) {
  if (!o.model) continue;
  const got = await o.model.predict(probe);
  let worst = 0;
  for (let i = 0; i < probe.length; i++)
    worst = Math.max(worst, Math.abs(got[i]!.progress - reference[i]!.progress));
  if (!got.every((a) => a.status === 'ok')) throw new Error(`${o.name}: some answers are not ok`);
  const verdict =
    worst <= 1e-3 ? 'the runtime uses it' : 'so by default the runtime passes over it and runs on the CPU';
  agreement.push(
    `${o.name}: largest progress difference from the CPU session ${worst.toExponential(1)} over ${probe.length} ` +
      `random states (default providerTolerance 1e-3: ${verdict})`,
  );
  const warnings: string[] = [];
  const vetted = await OnnxProgressModel.load(MODEL, {
    executionProviders: [o.name, 'cpu'],
    warn: (w) => warnings.push(w),
  });
  log(
    `${o.name} with the default tolerance: runs on ${vetted.provider}${warnings.length ? ` (${warnings.join('; ')})` : ''}`,
  );
  await vetted.close();
  log(agreement[agreement.length - 1]!);
}

const columns = [
  { name: 'CPU, 1 thread', model: cpu1 },
  { name: `CPU, ${allThreads} threads`, model: cpuN },
  ...opened.filter((o) => o.model).map((o) => ({ name: o.name, model: o.model! })),
];
const rates: number[][] = [];
for (const b of batches) {
  const reqs = randomRequests(cpu1, b, rng);
  const row: number[] = [];
  for (const c of columns) row.push(b / (await timePerCall(() => c.model.predict(reqs))));
  rates.push(row);
  log(`batch ${b}: ${columns.map((c, i) => `${c.name} ${row[i]!.toFixed(0)}/s`).join(', ')}`);
}
const base = rates[0]![0]!;
const lines = [
  '## Progress model by execution provider',
  '',
  `Written by \`npm run bench:providers -- --providers ${values.providers}\` (bench/providers.ts) on ` +
    `${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, ${gpus}, 1-minute load ${loadavg()[0]!.toFixed(2)} at the end. ` +
    'The default progress model opened by the runtime (`OnnxProgressModel`, what `--providers` selects), scoring ' +
    'random states of 3 views at 64x64 with `predict` as the reward service calls it.',
  '',
  ...opened.map((o) =>
    o.model
      ? `- ${o.name}: opened.`
      : `- ${o.name}: did not open here, so only the CPU figures below (${o.reason}).`,
  ),
  ...agreement.map((a) => `- ${a}.`),
  '',
  `| batch | ${columns.map((c) => `${c.name}, states/s`).join(' | ')} | ${columns
    .slice(1)
    .map((c) => `${c.name} vs CPU 1 thread at batch 1`)
    .join(' | ')} |`,
  `|---:|${columns.map(() => '---:').join('|')}|${columns
    .slice(1)
    .map(() => '---:')
    .join('|')}|`,
  ...batches.map(
    (b, i) =>
      `| ${b} | ${rates[i]!.map((r) => r.toFixed(0)).join(' | ')} | ${rates[i]!.slice(1)
        .map((r) => `${(r / base).toFixed(2)}x`)
        .join(' | ')} |`,
  ),
];
for (const c of columns) await c.model.close();
const out = process.env.PROVIDERS_OUT;
if (out) {
  const { writeFileSync } = await import('node:fs');
  writeFileSync(out, lines.join('\n') + '\n');
  log(`wrote ${out}`);
} else log(`wrote ${writeSection(REPO, 'providers.md', lines.join('\n'))}`);
