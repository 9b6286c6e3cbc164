/**
 * The Python client (clients/python) against a live server: one reset/step/autoreset cycle equals the same env run
 * in process with the same seed and actions, and the PyTorch PPO example's --smoke run trains through the bridge.
 * Skipped, saying why, when /usr/bin/python3 lacks numpy and msgpack (or torch, for the example).
 */
import { hasModules, PYTHON, runPython } from './python-helpers.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BridgeServer } from '../src/bridge/server.ts';
import { VectorEnv } from '../src/vector/vector-env.ts';

const TOKEN = 'python-learner-token';
const TINY = './test/fixtures/tiny-task.ts';

const clientReady = hasModules('numpy, msgpack');
const torchReady = clientReady && hasModules('torch');
if (!clientReady) {
  console.warn(
    `skipping the Python client tests: ${PYTHON} lacks numpy or msgpack (apt-get install python3-numpy python3-msgpack)`,
  );
} else if (!torchReady) {
  console.warn(
    `skipping the PyTorch example's smoke run: ${PYTHON} lacks torch (apt-get install python3-torch)`,
  );
}

interface Row {
  actions: number[];
  obs: number[];
  rewards: number[];
  terminated: number[];
  truncated: number[];
  is_success: number[];
  episode_step: number[];
  _final_obs?: number[];
  final_obs?: number[];
}

let server: BridgeServer;
beforeAll(async () => {
  server = await BridgeServer.start({
    port: 0,
    token: TOKEN,
    staticDir: false,
    learner: { workersPerBatch: 1, tasks: { tiny: TINY } },
  });
});
afterAll(async () => {
  await server?.close();
});

describe.skipIf(!clientReady)('Python client (numpy + msgpack)', () => {
  it('one same-step reset/step/autoreset cycle equals the in-process env; NaN and a wrong token are refused', async () => {
    const n = 3;
    const steps = 7;
    const [py, v] = await Promise.all([
      runPython(
        [
          'test/fixtures/learner_cycle.py',
          server.wsUrl,
          TOKEN,
          'tiny',
          String(n),
          'same-step',
          '21',
          String(steps),
        ],
        60_000,
      ),
      VectorEnv.create({ task: TINY, numEnvs: n, workers: 1, autoreset: 'same-step' }),
    ]);
    try {
      expect(py.code, py.stderr).toBe(0);
      const out = JSON.parse(py.stdout) as {
        reset: { obs: number[] };
        steps: Row[];
        nan_error: string;
        auth_error: string;
        space: { low: number; high: number };
      };
      expect(out.space).toEqual({ low: -1, high: 1 });
      const r = await v.reset({ seed: 21 });
      expect(out.reset.obs).toEqual(Array.from(r.obs));
      let finals = 0;
      for (const row of out.steps) {
        const res = await v.step(Float32Array.from(row.actions));
        expect(row.obs).toEqual(Array.from(res.obs));
        expect(row.rewards).toEqual(Array.from(res.rewards));
        expect(row.terminated).toEqual(Array.from(res.terminated));
        expect(row.truncated).toEqual(Array.from(res.truncated));
        expect(row.is_success).toEqual(Array.from(res.info.is_success));
        expect(row.episode_step).toEqual(Array.from(res.info.episode_step));
        const ended = res.info._final_obs!.includes(1);
        // As in Gymnasium, the final_* keys are there only on steps where an episode ended.
        expect(row._final_obs !== undefined).toBe(ended);
        if (ended) {
          finals++;
          expect(row._final_obs).toEqual(Array.from(res.info._final_obs!));
          const mask = res.info._final_obs!;
          const d = v.obsDim;
          for (let i = 0; i < n; i++) {
            if (!mask[i]) continue;
            expect(row.final_obs!.slice(i * d, (i + 1) * d)).toEqual(
              Array.from(res.info.final_obs!.slice(i * d, (i + 1) * d)),
            );
          }
        }
      }
      expect(finals).toBeGreaterThan(0);
      expect(out.nan_error).toBe('INVALID_ACTION');
      expect(out.auth_error).toBe('AUTH_FAILED');
    } finally {
      await v.close();
    }
  });
});

describe.skipIf(!torchReady)('PyTorch PPO example', () => {
  it('--smoke trains two updates through the bridge with oracle shaping', async () => {
    const py = await runPython(
      [
        'clients/python/examples/ppo_torch.py',
        '--smoke',
        '--url',
        server.wsUrl,
        '--token',
        TOKEN,
        '--task',
        'reach',
        '--reward',
        'oracle',
      ],
      90_000,
    );
    expect(py.code, py.stderr).toBe(0);
    expect(py.stdout).toMatch(/update 2\/2 steps 64/);
    expect(py.stdout).toMatch(/done: 64 steps/);
    for (let i = 0; i < 100 && server.learners.batchCount > 0; i++)
      await new Promise((r) => setTimeout(r, 20));
    expect(server.learners.batchCount).toBe(0);
  });
});
