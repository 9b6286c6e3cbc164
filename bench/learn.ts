/**
 * `npm run bench:learn [-- --tasks reach,push --rewards default,oracle,sparse,dense,naive,progress --steps N --seeds 0]`:
 * trains PPO with each reward on each task and reports env steps to 90% success (over the last 100 episodes),
 * final success, wall time and the share of wall time in learner updates; with `--eval-every N` also the best
 * success of the mean action on 50 fixed episodes (`pbridge train --eval-every`, which does not change what the
 * run trains). The baseline of the ratio is the saved
 * sparse-reward run of the same task, seed, learner settings and warm start. `--demos N [--bc-epochs E]
 * [--critic-warmup K]` starts every run from the scripted expert's demonstrations, as `pbridge train` does.
 * Writes bench/results/learn.md; `--report-only` rewrites it from the saved runs without training.
 */
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual, parseArgs } from 'node:util';
import { DEFAULT_TRAIN_PPO, defaultTrainConfig, train, type UpdateMetrics } from '../src/train/trainer.ts';
import { checkPpoConfig, type PpoConfig } from '../src/learn/ppo.ts';
import { intOption, numberOption, parsePpoOverrides } from '../src/cli/options.ts';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeSection } from './compose.ts';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const { values } = parseArgs({
  options: {
    tasks: { type: 'string', default: 'reach,push' },
    rewards: { type: 'string', default: 'default,oracle,sparse,dense,naive,progress' },
    steps: { type: 'string', default: '300000' },
    seeds: { type: 'string', default: '0' },
    envs: { type: 'string', default: '16' },
    // Settings other than `pbridge train`'s defaults; a run with any is kept beside the default one, not over it.
    ppo: { type: 'string', default: '' },
    'shaping-scale': { type: 'string', default: '1' },
    'query-stride': { type: 'string', default: '1' },
    label: { type: 'string', default: '' },
    'eval-every': { type: 'string', default: '0' },
    // The behaviour-cloning warm start of `pbridge train` (off by default there too).
    demos: { type: 'string', default: '0' },
    'bc-epochs': { type: 'string', default: String(defaultTrainConfig().bcEpochs) },
    'critic-warmup': { type: 'string', default: '0' },
    'report-only': { type: 'boolean', default: false },
  },
});
const ppoOverrides = parsePpoOverrides(values.ppo) as Partial<PpoConfig>;
checkPpoConfig({ ...DEFAULT_TRAIN_PPO, ...ppoOverrides });
const shapingScale = numberOption('shaping-scale', values['shaping-scale'], 1, 0, 1000);
const queryStride = intOption('query-stride', values['query-stride'], 1, 1, 1000);
const evalEvery = intOption('eval-every', values['eval-every'], 0, 0, 1e6);
const warm = {
  demos: intOption('demos', values.demos, 0, 0, 100_000),
  bcEpochs: intOption('bc-epochs', values['bc-epochs'], defaultTrainConfig().bcEpochs, 1, 100_000),
  criticWarmup: intOption('critic-warmup', values['critic-warmup'], 0, 0, 1e6),
};
/** The warm-start settings a run used; null for none (runs saved before the warm start existed have none). */
const warmStart = warm.demos > 0 ? warm : null;
/** What distinguishes this invocation's runs from default-settings runs of the same task, reward and seed. */
const variant =
  values.label ||
  [
    values.ppo,
    shapingScale !== 1 ? `shapingScale=${shapingScale}` : '',
    queryStride !== 1 ? `queryStride=${queryStride}` : '',
    warmStart
      ? `demos=${warm.demos},bcEpochs=${warm.bcEpochs}${warm.criticWarmup ? `,criticWarmup=${warm.criticWarmup}` : ''}`
      : '',
  ]
    .filter(Boolean)
    .join(',');
const log = (s: string): void => void process.stderr.write(`${s}\n`);

interface RunResult {
  task: string;
  reward: string;
  seed: number;
  stepsTo90: number | null;
  finalSuccess: number;
  bestSuccess: number;
  steps: number;
  wallS: number;
  updateShare: number;
  stepsPerS: number;
  curve: [number, number][];
  /** The best evaluation of the mean action (`--eval-every`); absent for runs without. */
  bestEval?: { step: number; success: number; episodes: number };
  /** The cloned actor's evaluation before PPO (`--demos` with `--eval-every`): behaviour cloning alone. */
  clonedEval?: number;
}

/** Ended episodes the trainer's success rate is taken over (the most recent ones). */
const WINDOW = 100;

async function run(task: string, reward: string, seed: number, steps: number): Promise<RunResult> {
  const lines: UpdateMetrics[] = [];
  const t0 = performance.now();
  const result = await train(
    defaultTrainConfig({
      env: task,
      reward,
      seed,
      steps,
      numEnvs: Number(values.envs),
      workers: 2,
      shapingScale,
      queryStride,
      ppo: { ...DEFAULT_TRAIN_PPO, ...ppoOverrides },
      evalEvery,
      ...(warmStart ?? {}),
    }),
    {
      onUpdate: (m) => {
        lines.push(m);
        if (m.update % 10 === 0)
          log(
            `${task} ${reward}${variant ? ` [${variant}]` : ''} s${seed}: ${m.step} steps, success ${(100 * m.success_rate).toFixed(0)}%, phi missing ${m.phi.missing} late ${m.phi.late}`,
          );
      },
      // Stop once the target is held for a while: the figure is steps to 90%, not the full budget.
      shouldStop: () => lines.length >= 10 && lines.slice(-5).every((m) => m.success_rate >= 0.9),
    },
  );
  const wallS = (performance.now() - t0) / 1000;
  // A success rate counts once its window is full: after a warm start the first update's few ended episodes
  // can all be successes.
  let ended = 0;
  const full = lines.filter((m) => (ended += m.episodes) >= WINDOW);
  const hit = full.find((m) => m.success_rate >= 0.9);
  const updateS = lines.reduce((a, m) => a + m.timings.update_s, 0);
  const total = lines.reduce(
    (a, m) => a + m.timings.rollout_s + m.timings.reward_wait_s + m.timings.update_s,
    0,
  );
  return {
    task,
    reward,
    seed,
    stepsTo90: hit ? hit.step : null,
    finalSuccess: lines.at(-1)?.success_rate ?? 0,
    bestSuccess: Math.max(0, ...full.map((m) => (Number.isFinite(m.success_rate) ? m.success_rate : 0))),
    steps: result.counters.step,
    wallS,
    updateShare: total > 0 ? updateS / total : 0,
    stepsPerS: result.counters.step / wallS,
    curve: lines.filter((_, i) => i % 10 === 9).map((m) => [m.step, m.success_rate]),
    ...(result.counters.best
      ? {
          bestEval: {
            step: result.counters.best.step,
            success: result.counters.best.success_rate,
            episodes: lines.find((m) => m.eval)!.eval!.episodes,
          },
        }
      : {}),
    ...(result.counters.warmStart?.eval ? { clonedEval: result.counters.warmStart.eval.success_rate } : {}),
  };
}

async function main(): Promise<void> {
  if (values['report-only']) {
    log(`wrote ${writeSection(REPO, 'learn.md', report(loadRuns(), null))}`);
    return;
  }
  const t0 = performance.now();
  const load = loadavg()[0]!;
  const steps = Number(values.steps);
  for (const task of values.tasks.split(',')) {
    for (const seed of values.seeds.split(',').map(Number)) {
      for (const reward of values.rewards.split(',')) {
        log(`== ${task} ${reward} seed ${seed}`);
        const r = await run(task, reward, seed, steps);
        saveRun(r, steps, load);
        // Written after every run, so a long invocation that is stopped still leaves what it measured.
        log(`wrote ${writeSection(REPO, 'learn.md', report(loadRuns(), t0))}`);
      }
    }
  }
}

/**
 * Every run's result is kept in bench/results/learn.json with the settings it ran under, and the section shows all
 * of them: rewards can be re-run one at a time (a new progress model, say) without redoing the baselines. A
 * re-run of the same task, reward and seed replaces the old entry.
 */
interface SavedRun extends RunResult {
  /** Settings that differ from the defaults ('' for none), as given on the command line. */
  variant?: string;
  /** The learner settings the run used, so a row is compared with a sparse run of the same settings only. */
  ppo: Partial<PpoConfig>;
  /** The warm start the run began with (absent: none); compared like `ppo`. */
  warmStart?: typeof warm;
  budget: number;
  envs: number;
  load: number;
  date: string;
}

const SAVED = join(REPO, 'bench', 'results', 'learn.json');

function loadRuns(): SavedRun[] {
  return existsSync(SAVED) ? (JSON.parse(readFileSync(SAVED, 'utf8')) as SavedRun[]) : [];
}

function saveRun(r: RunResult, budget: number, load: number): void {
  const same = (o: SavedRun): boolean =>
    o.task === r.task && o.reward === r.reward && o.seed === r.seed && (o.variant ?? '') === variant;
  const runs = loadRuns().filter((o) => !same(o));
  runs.push({
    ...r,
    variant,
    ppo: { ...DEFAULT_TRAIN_PPO, ...ppoOverrides },
    ...(warmStart ? { warmStart } : {}),
    budget,
    envs: Number(values.envs),
    load,
    date: new Date().toISOString(),
  });
  writeFileSync(SAVED, JSON.stringify(runs, null, 1) + '\n');
}

/**
 * One line per task, reward and settings run on more than one seed: single seeds of the same learner differ by a
 * factor of two (the oracle's included), so a comparison of rewards is a comparison of these lines.
 */
function seedSummary(results: SavedRun[]): string[] {
  const groups = new Map<string, SavedRun[]>();
  for (const r of results) {
    const key = `${r.task}\u0000${r.reward}\u0000${r.variant ?? ''}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  const kilo = (n: number): string => `${Math.round(n / 1000)}k`;
  const lines = [...groups.values()]
    .filter((g) => g.length > 1)
    .sort((a, b) => a[0]!.task.localeCompare(b[0]!.task))
    .map((g) => {
      const runs = [...g].sort((a, b) => a.seed - b.seed);
      const passed = runs.filter((r) => r.stepsTo90 !== null).length;
      // A seed that did not pass counts as beyond its budget, so a median never hides the seeds that failed.
      const steps = runs.map((r) => r.stepsTo90 ?? Infinity).sort((a, b) => a - b);
      const mid = steps.length / 2;
      const m = steps.length % 2 ? steps[Math.floor(mid)]! : (steps[mid - 1]! + steps[mid]!) / 2;
      const median = Number.isFinite(m) ? kilo(m) : `> ${kilo(Math.min(...runs.map((r) => r.budget)))}`;
      const budgets = [...new Set(runs.map((r) => kilo(r.budget)))].join(', ');
      const perSeed = runs
        .map(
          (r) =>
            `s${r.seed} ${r.stepsTo90 !== null ? kilo(r.stepsTo90) : `${(100 * r.bestSuccess).toFixed(0)}%`}`,
        )
        .join(', ');
      const r0 = runs[0]!;
      return `| ${r0.task} | ${r0.reward}${r0.variant ? ` (${r0.variant})` : ''} | ${budgets} | ${passed} of ${runs.length} | ${median} | ${perSeed} |`;
    });
  if (!lines.length) return [];
  return [
    'Over seeds: every task, reward and settings run on more than one seed. "by seed" gives the env steps to 90% success, or the best success where 90% was not reached within the budget; a seed that did not pass counts as beyond its budget in the median.',
    '',
    '| task | reward | budget | passed 90% | median steps to 90% | by seed |',
    '|---|---|---:|---:|---:|---|',
    ...lines,
    '',
    'Every run:',
    '',
  ];
}

/** `t0`: when this invocation started training, or null when it only rewrites the section. */
function report(results: SavedRun[], t0: number | null): string {
  const fmt = (n: number | null, budget: number): string =>
    n === null ? `not reached in ${budget}` : String(n);
  const rows = results.map((r) => {
    const sparse = results.find(
      (s) =>
        s.task === r.task &&
        s.seed === r.seed &&
        s.reward === 'sparse' &&
        isDeepStrictEqual(s.ppo, r.ppo) &&
        isDeepStrictEqual(s.warmStart ?? null, r.warmStart ?? null),
    );
    const ratio =
      sparse && r.stepsTo90 !== null
        ? sparse.stepsTo90 !== null
          ? `${(sparse.stepsTo90 / r.stepsTo90).toFixed(2)}x`
          : `> ${(sparse.budget / r.stepsTo90).toFixed(2)}x`
        : '-';
    return `| ${r.task} | ${r.reward}${r.variant ? ` (${r.variant})` : ''} | ${r.seed} | ${r.envs} | ${fmt(r.stepsTo90, r.budget)} | ${ratio} | ${(100 * r.bestSuccess).toFixed(0)}% | ${(100 * r.finalSuccess).toFixed(0)}% | ${r.steps} | ${r.wallS.toFixed(0)} | ${r.stepsPerS.toFixed(0)} | ${(100 * r.updateShare).toFixed(0)}% | ${r.load.toFixed(1)} | ${r.bestEval ? `${(100 * r.bestEval.success).toFixed(0)}% at ${r.bestEval.step}` : '-'}${r.clonedEval !== undefined ? ` (cloned: ${(100 * r.clonedEval).toFixed(0)}%)` : ''} |`;
  });
  const md = [
    '## Learning',
    '',
    `Written by \`npm run bench:learn -- --tasks T --rewards R --steps BUDGET --seeds S --envs N\` (bench/learn.ts), one row per run, each run's settings and raw figures kept in bench/results/learn.json (a later run of the same task, reward, seed and settings replaces its row). Settings other than the defaults (\`--ppo key=value,...\`, \`--shaping-scale\`, \`--query-stride\`) are named in brackets after the reward. Machine: ${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores; the 1-minute load at each run's start is in the table. PPO defaults of \`pbridge train\` (${DEFAULT_TRAIN_PPO.numSteps} steps per env per update, ${DEFAULT_TRAIN_PPO.numMinibatches} minibatches, ${DEFAULT_TRAIN_PPO.updateEpochs} epochs), stopping early once 90% success held for 5 updates. "vs sparse" is sparse's steps to 90% over this run's, for a sparse run of the same seed and learner settings (target for shaped progress: >= 3x). "best eval" is the best success of the mean action (the exported policy) on ${defaultTrainConfig().evalEpisodes} fixed episodes, evaluated every N updates in runs made with \`--eval-every N\`; after a warm start (\`--demos\`), "cloned" is the cloned actor's before any PPO update.${t0 === null ? '' : ` Last section update took ${((performance.now() - t0) / 60000).toFixed(0)} min.`}`,
    '',
    ...seedSummary(results),
    '| task | reward | seed | envs | env steps to 90% | vs sparse | best success | final success | steps run | wall s | steps/s | update share | load | best eval |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows,
    '',
    'Success curves (env steps, success rate over the last 100 episodes), every 10 updates:',
    '',
    ...results.map(
      (r) =>
        `- ${r.task} ${r.reward}${r.variant ? ` (${r.variant})` : ''} s${r.seed}: ${r.curve.map(([s, v]) => `${s}:${(100 * v).toFixed(0)}%`).join(' ')}`,
    ),
  ].join('\n');
  return md;
}

await main();
