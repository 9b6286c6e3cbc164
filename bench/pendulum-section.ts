/**
 * The pendulum section of BENCHMARKS.md from the JSON that `bench/learn-pendulum.ts` printed for each seed
 * (kept in bench/results/pendulum/seedN.json): `node bin/run-ts.js bench/pendulum-section.ts`.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeSection } from './compose.ts';

interface PendulumRun {
  seed: number;
  env_steps: number;
  final_mean_return_last20: number;
  deterministic_eval: { mean_return: number; min_return: number };
  curve: { step: number; mean_return_last20: number }[];
  wall_s: number;
  env_steps_per_s: number;
  time_share: { learner_update: number };
}

const REPO = fileURLToPath(new URL('..', import.meta.url));
const dir = join(REPO, 'bench', 'results', 'pendulum');
const runs = readdirSync(dir)
  .filter((f) => f.endsWith('.json'))
  .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as PendulumRun)
  .sort((a, b) => a.seed - b.seed);
const finals = runs.map((r) => r.final_mean_return_last20);
const mean = finals.reduce((a, b) => a + b, 0) / finals.length;
const std = Math.sqrt(finals.reduce((a, b) => a + (b - mean) ** 2, 0) / finals.length);
const md = [
  '## PPO reference: inverted pendulum',
  '',
  `Our PPO on our inverted pendulum, written to Gymnasium's published InvertedPendulum-v5 specification (envs/inverted-pendulum), with CleanRL \`ppo_continuous_action\` settings (1 env, 2048 steps per rollout, 10 epochs of 32 minibatches, lr 3e-4 annealed, gamma 0.99, lambda 0.95, observation and reward normalisation). Each seed: \`node bin/run-ts.js bench/learn-pendulum.ts --steps 1000000 --seed N\`, its JSON kept in bench/results/pendulum/. Baseline: CleanRL's published ~963 +- 22 at 1M steps.`,
  '',
  '| seed | env steps | mean return, last 20 episodes | deterministic eval (10 episodes) | return at 100k | wall s | env steps/s | time in updates |',
  '|---:|---:|---:|---:|---:|---:|---:|---:|',
  ...runs.map(
    (r) =>
      `| ${r.seed} | ${r.env_steps} | ${r.final_mean_return_last20.toFixed(0)} | ${r.deterministic_eval.mean_return.toFixed(0)} (min ${r.deterministic_eval.min_return.toFixed(0)}) | ${r.curve[0]?.mean_return_last20.toFixed(0) ?? '-'} | ${r.wall_s.toFixed(0)} | ${r.env_steps_per_s.toFixed(0)} | ${(100 * r.time_share.learner_update).toFixed(0)}% |`,
  ),
  '',
  `Mean over ${runs.length} seeds: ${mean.toFixed(0)} +- ${std.toFixed(0)} against CleanRL's ~963 +- 22 (ratio ${(mean / 963).toFixed(2)}). Not like for like in two ways: our learner bootstraps time-limit truncations (CleanRL treats them as terminations), and v5 pays 0 on the terminating step where older versions paid 1; a full 1000-step episode scores 1000 either way. Wall times are from a shared 2-core machine.`,
].join('\n');
process.stderr.write(`wrote ${writeSection(REPO, 'pendulum.md', md)}\n`);
