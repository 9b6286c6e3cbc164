/**
 * The model adapters without a server: answer parsing against recorded example answers
 * (test/fixtures/reward-http/answers.json), the progress reconstruction formulas against hand calculations, and
 * the prompts' structure (which images, in which order, decoded back from their PNG data URLs).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { stripReasoning } from '../src/reward/http/answer-text.ts';
import { EpisodeMemory, pickCameras } from '../src/reward/http/adapter.ts';
import { buildGenericPrompt, parseGenericProgress } from '../src/reward/http/generic.ts';
import { applyHop, buildGrmPrompt, fuseEstimates, parseGrmHop } from '../src/reward/http/grm.ts';
import { blankImage } from '../src/reward/http/image-url.ts';
import { applyVlacDelta, buildVlacPrompt, parseVlacDelta } from '../src/reward/http/vlac.ts';
import { imagesOf, levelsOf, solid, textOf } from './fixtures/reward-http/server.ts';

interface Answers {
  vlac: { text: string; delta: number | null }[];
  grm: { text: string; hop: number | null }[];
  generic: { text: string; progress: number | null }[];
}
const answers = JSON.parse(
  readFileSync(new URL('./fixtures/reward-http/answers.json', import.meta.url), 'utf8'),
) as Answers;

/** A parsed value must equal the expected one, and a failure must be undefined (never a 0 stand-in). */
function expectParsed(got: number | undefined, want: number | null, text: string): void {
  if (want === null) expect(got, `answer ${JSON.stringify(text)}`).toBeUndefined();
  else expect(got, `answer ${JSON.stringify(text)}`).toBeCloseTo(want, 12);
}

describe('answer parsing against recorded answers', () => {
  it.each(answers.vlac)('vlac: $text', ({ text, delta }) => expectParsed(parseVlacDelta(text), delta, text));
  it.each(answers.grm)('grm: $text', ({ text, hop }) => expectParsed(parseGrmHop(text), hop, text));
  it.each(answers.generic)('generic: $text', ({ text, progress }) =>
    expectParsed(parseGenericProgress(text), progress, text),
  );

  it('drops reasoning blocks, closed or cut off by max_tokens', () => {
    expect(stripReasoning('<think>40%</think>60%').trim()).toBe('60%');
    expect(stripReasoning('70% <think>it was 40% and the answer was cut').trim()).toBe('70%');
  });
});

describe('VLAC reconstruction: V += (1 - V) c for c >= 0, V += V c for c < 0', () => {
  it('matches hand calculations', () => {
    // +50% of what remains from 0 is 0.5; +50% of the remaining 0.5 adds 0.25.
    let v = applyVlacDelta(0, 0.5);
    expect(v).toBe(0.5);
    v = applyVlacDelta(v, 0.5);
    expect(v).toBe(0.75);
    // -50% of the 0.75 done removes 0.375.
    v = applyVlacDelta(v, -0.5);
    expect(v).toBe(0.375);
    // +20% of the remaining 0.625 adds 0.125.
    expect(applyVlacDelta(v, 0.2)).toBeCloseTo(0.5, 12);
    expect(applyVlacDelta(0.3, 1)).toBe(1);
    expect(applyVlacDelta(0.3, -1)).toBe(0);
    expect(applyVlacDelta(0.3, 0)).toBe(0.3);
  });
});

describe('GRM hops and fusion', () => {
  it('applies a forward hop to the remaining distance and a backward hop to the covered one', () => {
    expect(applyHop(0.4, 0.5)).toBeCloseTo(0.7, 12); // 0.4 + 0.5 * 0.6
    expect(applyHop(0.4, -0.5)).toBeCloseTo(0.2, 12); // 0.4 - 0.5 * 0.4
    expect(applyHop(0, 0.23)).toBeCloseTo(0.23, 12); // start-anchored: max(0, H)
    expect(applyHop(0, -0.3)).toBe(0);
    expect(applyHop(1, -0.3)).toBeCloseTo(0.7, 12); // goal-anchored: 1 + H
    expect(applyHop(1, 0.2)).toBe(1);
  });

  it('fuses by the mean of the estimates that arrived, and has no value without any', () => {
    expect(fuseEstimates([0.4, 0.4, 0.5])).toBeCloseTo(1.3 / 3, 12);
    expect(fuseEstimates([0.6])).toBe(0.6);
    expect(fuseEstimates([])).toBeUndefined();
  });
});

describe('prompts', () => {
  it('vlac: the task, then the earlier frame, then the current one', () => {
    const messages = buildVlacPrompt('open the drawer', solid(10), solid(20));
    const body = { messages };
    expect(levelsOf(body)).toEqual([10, 20]);
    expect(textOf(body)).toContain('Task: open the drawer');
    expect(textOf(body)).toMatch(/-100%.*\+100%/);
    // The PNG round trip is exact: the server sees the frame we rendered.
    const [first] = imagesOf(body);
    expect(first!.width).toBe(4);
    expect(first!.height).toBe(3);
    expect(Array.from(first!.pixels)).toEqual(Array.from(solid(10).rgb));
  });

  it('grm: eight images in the order start, end, 3 x BEFORE, 3 x AFTER, labelled with camera names', () => {
    const messages = buildGrmPrompt(
      'insert the peg',
      {
        referenceStart: solid(1),
        referenceEnd: blankImage(4, 3),
        before: [solid(11), solid(12), solid(13)],
        after: [solid(21), solid(22), solid(23)],
      },
      ['front', 'side', 'wrist'],
    );
    expect(levelsOf({ messages })).toEqual([1, 0, 11, 12, 13, 21, 22, 23]);
    const text = textOf({ messages });
    expect(text).toContain('Task: insert the peg');
    for (const label of [
      'BEFORE front view',
      'BEFORE wrist view',
      'AFTER side view',
      '<score>+NN%</score>',
    ]) {
      expect(text).toContain(label);
    }
    expect(text.indexOf('REFERENCE START')).toBeLessThan(text.indexOf('REFERENCE END'));
  });

  it('generic: every view with its camera name, or the configured ones', () => {
    const req = { instruction: 'stack the cubes', views: { front: solid(5), wrist: solid(6) } };
    expect(levelsOf({ messages: buildGenericPrompt(req) })).toEqual([5, 6]);
    const one = { messages: buildGenericPrompt(req, ['wrist']) };
    expect(levelsOf(one)).toEqual([6]);
    expect(textOf(one)).toContain('wrist:');
    expect(() => buildGenericPrompt(req, ['side'])).toThrow(/no view "side".*front, wrist/);
  });
});

describe('adapter helpers', () => {
  it('pads three views by repeating the cameras there are', () => {
    expect(pickCameras({ a: 1 }, 3)).toEqual(['a', 'a', 'a']);
    expect(pickCameras({ a: 1, b: 2 }, 3)).toEqual(['a', 'b', 'a']);
    expect(pickCameras({ a: 1, b: 2, c: 3, d: 4 }, 3)).toEqual(['a', 'b', 'c']);
    expect(pickCameras({ a: 1, b: 2 }, 3, ['b'])).toEqual(['b', 'b', 'b']);
    expect(() => pickCameras({}, 3)).toThrow(/no views/);
    expect(() => pickCameras({ a: 1 }, 3, ['z'])).toThrow(/no view "z"/);
  });

  it('keeps state per (env, episode) and forgets the oldest episodes first', () => {
    const memory = new EpisodeMemory(() => ({ n: 0 }), 2);
    memory.get({ envId: 0, episodeId: 0 }).n = 1;
    expect(memory.get({ envId: 0, episodeId: 0 }).n).toBe(1);
    expect(memory.get({ envId: 1, episodeId: 0 }).n).toBe(0);
    memory.get({ envId: 0, episodeId: 1 });
    expect(memory.size).toBe(2);
    expect(memory.get({ envId: 0, episodeId: 0 }).n).toBe(0); // evicted, starts afresh
  });
});
