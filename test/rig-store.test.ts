/** The rig episode store on its own: what a crash can leave behind reads back as documented. */
import { appendFileSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  EPISODE_FORMAT,
  EpisodeStoreError,
  EpisodeWriter,
  nextEpisodeNumber,
  readEpisode,
  readFrame,
  type EpisodeMeta,
  type StepRecord,
} from '../src/rig/episode-store.ts';
import { smallSpec, tempStore } from './rig-helpers.ts';

function meta(episode: number): EpisodeMeta {
  return {
    format: EPISODE_FORMAT,
    rig: 'store-rig',
    episode,
    startedAt: new Date(0).toISOString(),
    spec: smallSpec({ name: 'store-rig' }),
    policy: 'zero',
    reward: 'none',
    gamma: 0.99,
    deadlineMs: 100,
  };
}

function step(k: number): Omit<StepRecord, 'frames'> {
  return {
    kind: 'step',
    step: k,
    seq: k,
    rigTime: k,
    serverTime: k,
    proprio: [k],
    action: [0, 0],
    policy: 'zero',
    late: false,
    decideMs: 0.1,
  };
}

async function writeSteps(root: string, n: number): Promise<EpisodeWriter> {
  const w = await EpisodeWriter.create(root, meta(0));
  for (let k = 0; k < n; k++) {
    await w.appendStep(step(k), [{ camera: 'front', encoding: 'raw', data: new Uint8Array(192).fill(k) }]);
  }
  return w;
}

describe('rig episode store', () => {
  it('numbers episodes after the ones on disk and never reuses a directory', async () => {
    const root = tempStore();
    expect(await nextEpisodeNumber(root, 'store-rig')).toBe(0);
    await (await writeSteps(root, 1)).abandon();
    expect(await nextEpisodeNumber(root, 'store-rig')).toBe(1);
    await expect(EpisodeWriter.create(root, meta(0))).rejects.toThrow(/EEXIST/);
  });

  it('reads an episode its writer never ended as truncated, and drops a torn last line', async () => {
    const root = tempStore();
    const w = await writeSteps(root, 3);
    await w.abandon();
    const dir = join(root, 'store-rig', 'episode-000000');
    appendFileSync(join(dir, 'steps.jsonl'), '{"kind":"step","step":3,"seq":3,"fr');
    const ep = await readEpisode(dir);
    expect(ep.steps.map((s) => s.seq)).toEqual([0, 1, 2]);
    expect(ep).toMatchObject({ end: undefined, truncated: true, terminated: false, tornTail: true });
    expect(await readFrame(dir, ep.steps[2]!.frames.front!)).toEqual(Buffer.alloc(192, 2));
  });

  it('drops a last step whose frames did not reach the disk, and catches corrupted frames', async () => {
    const root = tempStore();
    const w = await writeSteps(root, 2);
    await w.abandon();
    const dir = join(root, 'store-rig', 'episode-000000');
    truncateSync(join(dir, 'frames.bin'), 192 + 100);
    const ep = await readEpisode(dir);
    expect(ep.steps.length).toBe(1);
    expect(ep.tornTail).toBe(true);
    const bytes = readFileSync(join(dir, 'frames.bin'));
    bytes[5] = bytes[5]! ^ 0xff;
    writeFileSync(join(dir, 'frames.bin'), bytes);
    await expect(readFrame(dir, ep.steps[0]!.frames.front!)).rejects.toBeInstanceOf(EpisodeStoreError);
  });

  it('refuses damage a crash cannot cause: a bad line in the middle', async () => {
    const root = tempStore();
    const w = await writeSteps(root, 2);
    await w.end({
      kind: 'end',
      episode: 0,
      steps: 2,
      terminated: false,
      truncated: true,
      success: false,
      reason: 'reset',
      return: 0,
      shapedReturn: 0,
      serverTime: 0,
    });
    const dir = join(root, 'store-rig', 'episode-000000');
    const lines = readFileSync(join(dir, 'steps.jsonl'), 'utf8').split('\n');
    lines[0] = '{not json';
    writeFileSync(join(dir, 'steps.jsonl'), lines.join('\n'));
    await expect(readEpisode(dir)).rejects.toMatchObject({ code: 'EPISODE_STORE' });
  });
});
