/** The command line as other tools call it: a real child process, JSON on stdout, status 2 on errors. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);

async function pbridge(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['bin/pbridge.js', ...args], { timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('pbridge CLI', () => {
  it('envs --json lists the five tasks with spaces, cameras and instructions', async () => {
    const r = await pbridge('envs', '--json');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.tasks.map((t: { name: string }) => t.name)).toEqual([
      'reach',
      'push',
      'pick-place',
      'drawer-open',
      'stack',
    ]);
    for (const t of out.tasks) {
      expect(t.cameras).toEqual(expect.arrayContaining(['front', 'side', 'wrist']));
      expect(t.observation_space.shape[0]).toBe(t.observation_names.length);
      expect(t.action_spaces.ee_delta.shape).toEqual([4]);
      expect(t.action_spaces.joint_delta.shape).toEqual([8]);
    }
  });

  it('rollout --json reports success rate, returns and per-episode results consistent with each other', async () => {
    const r = await pbridge(
      'rollout',
      '--env',
      'reach',
      '--policy',
      'expert',
      '--episodes',
      '3',
      '--seed',
      '5',
      '--json',
    );
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s.per_episode.map((e: { seed: number }) => e.seed)).toEqual([5, 6, 7]);
    const successes = s.per_episode.filter((e: { success: boolean }) => e.success).length;
    expect(s.success_rate).toBeCloseTo(successes / 3, 12);
    const steps = s.per_episode.reduce((a: number, e: { length: number }) => a + e.length, 0);
    expect(s.env_steps).toBe(steps);
    expect(s.env_steps_per_s).toBeGreaterThan(0);
  });

  it('inspect loads an MJCF and reports its sizes and a finite zero-control run', async () => {
    const r = await pbridge('inspect', 'robots/arm7/arm7.xml', '--seconds', '1', '--json');
    expect(r.code).toBe(0);
    const rep = JSON.parse(r.stdout);
    expect([rep.nq, rep.nv, rep.nu]).toEqual([9, 9, 9]);
    expect(rep.cameras).toEqual(['wrist']);
    expect(rep.finite).toBe(true);
    expect(rep.simulated_s).toBeCloseTo(rep.steps * rep.timestep, 6);
  });

  it('exits 2 with the error code and message for bad input', async () => {
    const unknown = await pbridge('rollout', '--env', 'nope', '--json');
    expect(unknown.code).toBe(2);
    expect(JSON.parse(unknown.stdout).error.code).toBe('UNKNOWN_TASK');
    const missing = await pbridge('inspect', 'no/such/file.xml');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/error \[FILE_NOT_FOUND\]: MJCF file not found: no\/such\/file.xml/);
    const badFlag = await pbridge('rollout', '--episodes', '0');
    expect(badFlag.stderr).toMatch(/--episodes: must be an integer in \[1, 1000000\], got "0"/);
    // An empty value is not zero.
    const blank = await pbridge('rollout', '--episodes=');
    expect(blank.code).toBe(2);
    expect(blank.stderr).toMatch(/--episodes: must be an integer in \[1, 1000000\], got ""/);
    // Episode kinds are exclusive: a demos directory holds one kind besides the expert.
    const twoKinds = await pbridge('demos', '--out', '/tmp/pb-never-written', '--random', '--noisy');
    expect(twoKinds.code).toBe(2);
    expect(twoKinds.stderr).toMatch(/--noisy: cannot be combined with --random/);
  });

  it("--help after any command prints that command's usage and exits 0 instead of refusing the flag", async () => {
    const unknown = await pbridge('nope');
    const commands = /valid: (.*)$/m.exec(unknown.stderr)![1]!.split(', ');
    expect(commands).toContain('train');
    const helps = await Promise.all(commands.map((c) => pbridge(c, '--help')));
    helps.forEach((h, i) => {
      expect(h.code, commands[i]).toBe(0);
      expect(h.stdout.startsWith(`usage: pbridge ${commands[i]} [options]`), commands[i]).toBe(true);
      expect(h.stdout, commands[i]).toMatch(new RegExp(`^  ${commands[i]}( |$)`, 'm'));
    });
    // train has two forms, simulated and rig; both are shown, and nothing else.
    const train = helps[commands.indexOf('train')]!.stdout;
    expect(train).toMatch(/^ {2}train \[--env push\]/m);
    expect(train).toMatch(/^ {2}train --rig/m);
    expect(train).not.toMatch(/^ {2}eval /m);
    expect((await pbridge('rollout', '-h')).stdout).toMatch(/^ {2}rollout \.\.\. --serve/m);
    expect((await pbridge('help', 'eval')).stdout).toMatch(/^usage: pbridge eval \[options\]\n\n {2}eval /);
  });
});
