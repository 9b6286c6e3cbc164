/**
 * `npx tsx bench/learner-update.ts [--runs 15] [--warmup 3] [--baseline path/to/ppo.ts]`: times
 * `PpoLearner.update` with the trainer's default PPO config (16 envs x 128 steps, 8 minibatches, 10 epochs,
 * 64-64 MLPs) on rollouts of seeded random data, obsDim 39 and actDim 4 as the push task. Prints the median and
 * spread of the update's wall time, the load average, and a checksum of the parameters.
 *
 * `--baseline` also loads the learner from another copy of the sources (a snapshot of the code before a change)
 * and alternates updates of the two in this one process, so both see the same load on a shared machine; it then
 * adds the median of the per-run time ratios.
 */
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Rng } from '../src/env/rng.ts';
import { DEFAULT_TRAIN_PPO } from '../src/train/trainer.ts';
import { PpoLearner, type PpoLearnerOptions } from '../src/learn/ppo.ts';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '15' },
    warmup: { type: 'string', default: '3' },
    baseline: { type: 'string' },
  },
});
const NUM_ENVS = 16;
const OBS_DIM = 39;
const ACT_DIM = 4;

type LearnerClass = new (options: PpoLearnerOptions) => PpoLearner;

/** One implementation under test, with its own learner and data stream (the same seeds for every subject). */
interface Subject {
  name: string;
  learner: PpoLearner;
  rng: Rng;
  times: number[];
}

function subject(name: string, Learner: LearnerClass): Subject {
  const learner = new Learner({
    obsDim: OBS_DIM,
    actDim: ACT_DIM,
    numEnvs: NUM_ENVS,
    seed: 0,
    config: { ...DEFAULT_TRAIN_PPO },
    deferredRewards: true,
  });
  return { name, learner, rng: new Rng(1), times: [] };
}

/** Fills one rollout with seeded random observations, episode ends and rewards. */
function fillRollout(learner: PpoLearner, rng: Rng): void {
  const { numSteps } = learner.config;
  const obs = new Float32Array(NUM_ENVS * OBS_DIM);
  const finalObs = new Float32Array(NUM_ENVS * OBS_DIM);
  const terminated = new Uint8Array(NUM_ENVS);
  const truncated = new Uint8Array(NUM_ENVS);
  for (let t = 0; t < numSteps; t++) {
    for (let i = 0; i < obs.length; i++) obs[i] = rng.normal();
    learner.act(obs);
    for (let n = 0; n < NUM_ENVS; n++) {
      terminated[n] = rng.random() < 0.01 ? 1 : 0;
      truncated[n] = !terminated[n] && rng.random() < 0.01 ? 1 : 0;
    }
    for (let i = 0; i < finalObs.length; i++) finalObs[i] = rng.normal();
    learner.observe({ terminated, truncated, finalObs });
  }
  const rewards = new Float32Array(numSteps * NUM_ENVS);
  for (let i = 0; i < rewards.length; i++) rewards[i] = rng.normal();
  learner.setRolloutRewards(rewards);
}

/** Wall time of one update on a fresh rollout, in ms. */
function timeUpdate(s: Subject): number {
  fillRollout(s.learner, s.rng);
  const nextObs = Float32Array.from({ length: NUM_ENVS * OBS_DIM }, () => s.rng.normal());
  const t0 = performance.now();
  s.learner.update(nextObs, 0);
  return performance.now() - t0;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function report(s: Subject): string {
  let sum = 0;
  let sumAbs = 0;
  for (const p of s.learner.model.params) {
    sum += p;
    sumAbs += Math.abs(p);
  }
  const t = s.times;
  return (
    `${s.name}: median ${median(t).toFixed(1)} ms, min ${Math.min(...t).toFixed(1)}, ` +
    `max ${Math.max(...t).toFixed(1)} over ${t.length} runs; ` +
    `params sum ${sum.toPrecision(8)}, sum |p| ${sumAbs.toPrecision(8)}`
  );
}

async function main(): Promise<void> {
  const subjects = [subject('current', PpoLearner)];
  if (values.baseline) {
    const mod = (await import(pathToFileURL(resolve(values.baseline)).href)) as { PpoLearner: LearnerClass };
    subjects.unshift(subject('baseline', mod.PpoLearner));
  }
  const warmup = Number(values.warmup);
  const runs = Number(values.runs);
  const loadStart = loadavg()[0]!;
  for (let i = 0; i < warmup + runs; i++) {
    for (const s of subjects) {
      const ms = timeUpdate(s);
      if (i >= warmup) s.times.push(ms);
    }
  }
  const loadEnd = loadavg()[0]!;
  const { numSteps, numMinibatches, updateEpochs } = subjects[0]!.learner.config;
  console.log(
    `PpoLearner.update, ${NUM_ENVS} envs x ${numSteps} steps, ${numMinibatches} minibatches, ` +
      `${updateEpochs} epochs, obs ${OBS_DIM}, act ${ACT_DIM}; ${warmup} warm-up runs; ` +
      `load average ${loadStart.toFixed(2)} -> ${loadEnd.toFixed(2)}`,
  );
  for (const s of subjects) console.log(`  ${report(s)}`);
  if (subjects.length === 2) {
    const [base, cur] = subjects as [Subject, Subject];
    const ratios = base.times.map((t, i) => t / cur.times[i]!);
    console.log(`  speed-up (median of per-run baseline / current): ${median(ratios).toFixed(2)}x`);
  }
}

await main();
