/**
 * The rig commands: `rig-sim` (a simulated rig against a running `pbridge serve`) and the rig options of `serve`
 * (episode store, policy, reward model, gamma, deadline).
 */
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { RigHostOptions } from '../bridge/rig/host.ts';
import { DEFAULT_MODEL_PATH, openProgressModel } from '../reward/open-model.ts';
import { RewardService } from '../reward/service.ts';
import { loadRigPolicy } from '../rig/policy.ts';
import { runRigSim } from '../rig/sim.ts';
import { ConnectRefused } from '../bridge/client.ts';
import { InvalidArgument, ProgressBridgeError } from '../sim/errors.ts';
import { intOption, numberOption } from './options.ts';

export const RIG_SERVE_USAGE = `        [--rig-store rig-episodes] [--rig-policy PATH.onnx] [--reward default|oracle|none|PATH.onnx|URL]
        [--gamma 0.99] [--rig-deadline-ms MS]
                                                  rigs (role rig, token required): episodes stored under
                                                  --rig-store; actions from --rig-policy, else zero
`;

export const RIG_SIM_USAGE = `  rig-sim --env NAME|PATH --url ws://HOST:PORT/ws --token T [--episodes 1] [--rate HZ] [--fast]
          [--max-steps N] [--cameras front,side,wrist] [--size 96] [--encoding png|jpeg|raw] [--name NAME]
          [--intervention-rate 0] [--no-success-sensor] [--seed 0] [--warmup STEPS] [--json]
                                                  a simulated rig speaking the rig protocol: episodes, steps,
                                                  latency p50/p99 (observation sent -> action received)
`;

/** parseArgs options `serve` takes for rigs. */
export const RIG_SERVE_OPTIONS = {
  'rig-store': { type: 'string' },
  'rig-policy': { type: 'string' },
  reward: { type: 'string' },
  gamma: { type: 'string' },
  'rig-deadline-ms': { type: 'string' },
} as const;

/**
 * The rig host options from `serve`'s flags: loads the policy and opens the reward model. With no `--reward`
 * and no shipped default model on disk, rigs are served without Phi (and told so), rather than refusing to start
 * a server that viewers and publishers also use.
 */
export async function rigServeOptions(
  values: Partial<Record<keyof typeof RIG_SERVE_OPTIONS, string>>,
  print: (line: string) => void = (line) => console.error(line),
  preset: Partial<RigHostOptions> = {},
): Promise<RigHostOptions> {
  const gamma = numberOption('gamma', values.gamma, 0.99, 0, 1);
  const deadline = values['rig-deadline-ms'];
  const options: RigHostOptions = { storeDir: values['rig-store'] ?? 'rig-episodes', gamma, ...preset };
  if (deadline !== undefined) options.deadlineMs = numberOption('rig-deadline-ms', deadline, 0, 0, 60_000);
  if (values['rig-policy']) options.policy = await loadRigPolicy(values['rig-policy']);
  let source = values.reward ?? 'default';
  if (values.reward === undefined && !existsSync(DEFAULT_MODEL_PATH)) {
    print(
      `rigs:   no default progress model at ${DEFAULT_MODEL_PATH}; rigs get no Phi (pass --reward to choose one)`,
    );
    source = 'none';
  }
  if (source !== 'none') {
    const opened = await openProgressModel(source);
    const service = new RewardService(opened.model, { maxWaitMs: 1 });
    options.reward = { service, id: opened.model.id, cameras: opened.cameras, close: () => service.close() };
  }
  print(
    `rigs:   store ${options.storeDir}, policy ${options.policy?.name ?? 'zero'}, reward ${options.reward?.id ?? 'none'}${
      options.reward?.cameras.length ? ` (cameras ${options.reward.cameras.join(', ')}: png or raw)` : ''
    }, gamma ${gamma}`,
  );
  return options;
}

export async function cmdRigSim(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      env: { type: 'string', default: 'push' },
      url: { type: 'string' },
      token: { type: 'string' },
      episodes: { type: 'string' },
      rate: { type: 'string' },
      fast: { type: 'boolean', default: false },
      'max-steps': { type: 'string' },
      cameras: { type: 'string' },
      size: { type: 'string' },
      encoding: { type: 'string' },
      name: { type: 'string' },
      'intervention-rate': { type: 'string' },
      'no-success-sensor': { type: 'boolean', default: false },
      seed: { type: 'string' },
      warmup: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  if (!values.url) throw new InvalidArgument('--url', 'rig-sim needs the bridge URL (ws://HOST:PORT/ws)');
  const token = values.token ?? process.env.PBRIDGE_TOKEN;
  if (!token) throw new InvalidArgument('--token', 'rigs always need the token (--token or PBRIDGE_TOKEN)');
  const encoding = values.encoding ?? 'png';
  if (encoding !== 'png' && encoding !== 'raw' && encoding !== 'jpeg') {
    throw new InvalidArgument('--encoding', `must be png, jpeg or raw, got "${encoding}"`);
  }
  const ac = new AbortController();
  const stop = (): void => ac.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const summary = await runRigSim({
    env: values.env!,
    url: values.url,
    token,
    episodes: intOption('episodes', values.episodes, 1, 1, 1_000_000),
    ...(values.rate !== undefined ? { rateHz: numberOption('rate', values.rate, 0, 0.1, 1000) } : {}),
    fast: values.fast,
    ...(values['max-steps'] !== undefined
      ? { maxSteps: intOption('max-steps', values['max-steps'], 0, 1, 1_000_000) }
      : {}),
    ...(values.cameras !== undefined ? { cameras: values.cameras.split(',').filter(Boolean) } : {}),
    size: intOption('size', values.size, 96, 8, 1024),
    encoding,
    ...(values.name !== undefined ? { name: values.name } : {}),
    interventionRate: numberOption('intervention-rate', values['intervention-rate'], 0, 0, 1),
    noSuccessSensor: values['no-success-sensor'],
    seed: intOption('seed', values.seed, 0, 0, 2 ** 31),
    warmupSteps: intOption('warmup', values.warmup, 0, 0, 1_000_000),
    signal: ac.signal,
    ...(values.json
      ? {}
      : {
          onStep: ({ episode, step }: { episode: number; step: number }) => {
            if (step === 0) console.error(`episode ${episode} started`);
          },
        }),
  }).catch((err: unknown) => {
    // The server's refusal carries a stable code; keep it for `error [CODE]` and --json.
    if (err instanceof ConnectRefused) {
      throw new ProgressBridgeError(err.status?.code ?? 'CONNECT_REFUSED', err.message, { cause: err });
    }
    throw err;
  });
  process.off('SIGINT', stop);
  process.off('SIGTERM', stop);
  if (values.json) {
    console.log(JSON.stringify(summary, null, 2));
    return;
  }
  const l = summary.latencyMs;
  console.log(`rig:             ${summary.rig} (${summary.env}, ${summary.rateHz.toFixed(1)} Hz)`);
  console.log(`policy / reward: ${summary.policy} / ${summary.reward}`);
  console.log(`episodes:        ${summary.episodes} completed, ${summary.successes} successful`);
  if (summary.stoppedBy)
    console.log(
      `stopped:         ${summary.stoppedBy === 'server_shutdown' ? 'the server shut down' : 'interrupted'}`,
    );
  console.log(
    `steps:           ${summary.steps} (${summary.stepsPerS.toFixed(1)} steps/s), ${summary.late} late actions held`,
  );
  console.log(`interventions:   ${summary.interventions}`);
  console.log(
    `latency:         p50 ${l.p50.toFixed(2)} ms, p99 ${l.p99.toFixed(2)} ms, max ${l.max.toFixed(2)} ms (observation sent -> action received)`,
  );
}
