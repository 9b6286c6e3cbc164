/**
 * The Python rig client (clients/python/progress_bridge/rig.py) and its example against a live server: episodes
 * run to their ends, every step is stored with the frames and proprio the script sent, the rig-trained learner
 * takes its transitions, and a refused spec reaches Python as a RigError naming the field.
 * Skipped, saying why, when /usr/bin/python3 lacks numpy and msgpack.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { hasModules, PYTHON, runPython } from './python-helpers.ts';
import { describe, expect, it } from 'vitest';
import { openProgressModel } from '../src/reward/open-model.ts';
import { RewardService } from '../src/reward/service.ts';
import { defaultRigTrainConfig, RigTrainer } from '../src/train/rig/trainer.ts';
import { startRigServer, tempStore, TOKEN } from './rig-helpers.ts';

const ready = hasModules('numpy, msgpack');
if (!ready) {
  console.warn(
    `skipping the Python rig client tests: ${PYTHON} lacks numpy or msgpack (apt-get install python3-numpy python3-msgpack)`,
  );
}

describe.skipIf(!ready)('Python rig client', () => {
  it('runs the example rig to completion; the store holds what Python sent and the learner trains on it', async () => {
    const opened = await openProgressModel('oracle');
    const service = new RewardService(opened.model, { maxWaitMs: 0 });
    // A rollout larger than 6 episodes can fill: the test reads the transitions before any update takes them.
    const trainer = new RigTrainer(
      defaultRigTrainConfig({ rigs: ['py-line'], steps: 1024, rolloutSteps: 1024, reward: 'oracle' }),
    );
    const store = tempStore();
    const server = await startRigServer({
      storeDir: store,
      policy: trainer,
      observer: trainer,
      reward: { service, id: opened.model.id, cameras: [], close: () => service.close() },
    });
    let stop = false;
    const training = trainer.run({ shouldStop: () => stop });
    try {
      const out = await runPython(
        [
          'clients/python/examples/rig_line.py',
          '--url',
          server.wsUrl,
          '--token',
          TOKEN,
          '--episodes',
          '6',
          '--json',
        ],
        60_000,
      );
      expect(out.stderr).toBe('');
      expect(out.code).toBe(0);
      const summary = JSON.parse(out.stdout) as { episodes: number; steps: number; lengths: number[] };
      expect(summary.episodes).toBe(6);
      expect(summary.lengths.reduce((a, b) => a + b, 0)).toBe(summary.steps);

      // Every observation is stored, in order, with the 8x8 raw frame's bytes and the proprio Python sent.
      const dirs = readdirSync(join(store, 'py-line')).sort();
      expect(dirs).toHaveLength(6);
      let stored = 0;
      for (const [i, dir] of dirs.entries()) {
        const lines = readFileSync(join(store, 'py-line', dir, 'steps.jsonl'), 'utf8')
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as Record<string, unknown>);
        const steps = lines.filter((l) => l.kind === 'step');
        expect(steps).toHaveLength(summary.lengths[i]!);
        stored += steps.length;
        const frames = readFileSync(join(store, 'py-line', dir, 'frames.bin'));
        const first = steps[0] as {
          proprio: number[];
          frames: { front: { offset: number; length: number } };
        };
        expect(first.frames.front.length).toBe(8 * 8 * 3);
        // The frame's brightness encodes 1 - |e| of the proprio sent with it.
        const e = first.proprio[0]!;
        expect(frames[first.frames.front.offset]).toBe(Math.floor(255 * Math.max(0, 1 - Math.abs(e))));
        expect(lines.at(-1)).toMatchObject({ kind: 'end' });
      }
      expect(stored).toBe(summary.steps);
      // Every transition of every episode (one fewer than its observations) is ready for the learner, none
      // skipped: nothing came late or was held.
      expect(trainer.transitions()).toEqual({
        ready: summary.steps - summary.episodes,
        skipped: 0,
        stale: 0,
      });
    } finally {
      stop = true;
      await training;
      await server.close();
    }
  }, 90_000);

  it('raises RigError with the code and field when the server refuses the spec', async () => {
    const trainer = new RigTrainer(defaultRigTrainConfig({ rigs: ['py-line'], rolloutSteps: 64 }));
    const server = await startRigServer({ policy: trainer, observer: trainer });
    try {
      const script = [
        'import sys; sys.path.insert(0, "clients/python")',
        'from progress_bridge import Camera, RigClient, RigError',
        'args = dict(instruction="x", cameras=[], proprio_names=["a"], action_high=[1], rate_hz=10)',
        `RigClient("${server.wsUrl}", "${TOKEN}", name="py-line", action_low=[-1], **args).close()`,
        'try:',
        `    RigClient("${server.wsUrl}", "${TOKEN}", name="py-line", action_low=[-2], **args)`,
        'except RigError as e:',
        '    print(e.code, e.path)',
      ].join('\n');
      const out = await runPython(['-c', script], 30_000);
      expect(out.stderr).toBe('');
      expect(out.stdout.trim()).toBe('SPEC_MISMATCH rig.action.low[0]');
    } finally {
      await server.close();
    }
  }, 60_000);
});
