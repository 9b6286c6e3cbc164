/**
 * The arm's action modes against independent expectations: geometry of the ready pose worked out by hand,
 * Cartesian deltas that move the grip site by the commanded distance, joint deltas that move servo targets by
 * JOINT_STEP, and the hand kept pointing down.
 */
import { describe, expect, it } from 'vitest';
import { EE_STEP, JOINT_STEP } from '../robots/arm7/controller.ts';
import { HOME_QPOS } from '../robots/arm7/constants.ts';
import { makeEnv } from '../src/env/make.ts';

const grip = (env: Awaited<ReturnType<typeof makeEnv>>): number[] => {
  const p = [0, 0, 0];
  env.robot.gripPos(env.data, p);
  return p;
};

describe('arm7', () => {
  it('ready pose puts the fingertips where the link lengths say', async () => {
    const env = await makeEnv('reach', { robotNoise: 0 });
    env.reset({ seed: 0 });
    // Planar chain in the x-z plane: shoulder at z = 0.333, upper arm 0.316 at angle q2 from vertical,
    // forearm 0.384 at q2 + q4, hand (wrist axis to grip site) 0.257 at q2 + q4 + q6 = pi (pointing down).
    const [, q2, , q4, , q6] = HOME_QPOS;
    const x = 0.316 * Math.sin(q2) + 0.384 * Math.sin(q2 + q4) + 0.257 * Math.sin(q2 + q4 + q6);
    const z = 0.333 + 0.316 * Math.cos(q2) + 0.384 * Math.cos(q2 + q4) + 0.257 * Math.cos(q2 + q4 + q6);
    const p = grip(env);
    expect(p[0]).toBeCloseTo(x, 3);
    expect(p[1]).toBeCloseTo(0, 6);
    expect(p[2]).toBeCloseTo(z, 3);
    env.close();
  });

  it('ee_delta moves the grip site by about EE_STEP per unit action and keeps the hand pointing down', async () => {
    const env = await makeEnv('reach', { robotNoise: 0, episodeSteps: 200 });
    env.reset({ seed: 0 });
    const start = grip(env);
    const n = 10;
    for (let t = 0; t < n; t++) env.step([0.5, -0.5, 0.5, 1]);
    // Let the servos settle with zero commands, then compare with the commanded displacement.
    for (let t = 0; t < 10; t++) env.step([0, 0, 0, 1]);
    const end = grip(env);
    // The controller integrates servo targets through a first-order (Jacobian) model of the arm, so 10 cm
    // lands within 10% per axis; the lagging servos alone would fall ~40% short without the integration.
    const expected = n * 0.5 * EE_STEP;
    const moved = [end[0]! - start[0]!, -(end[1]! - start[1]!), end[2]! - start[2]!];
    for (const m of moved) expect(Math.abs(m - expected)).toBeLessThan(0.1 * expected);
    // A zero command holds the hand still (the posture pull stays in the null space).
    for (let t = 0; t < 20; t++) env.step([0, 0, 0, 1]);
    const held = grip(env);
    for (let k = 0; k < 3; k++) expect(Math.abs(held[k]! - end[k]!)).toBeLessThan(1e-3);
    const m = env.data.site_xmat;
    const s = 9 * env.robot.siteId;
    // Approach axis (site z) points along world -z within 2 degrees.
    expect(-m[s + 8]!).toBeGreaterThan(Math.cos((2 * Math.PI) / 180));
    env.close();
  });

  it('joint_delta moves each servo target by JOINT_STEP per unit action', async () => {
    const env = await makeEnv('reach', { robotNoise: 0, actionMode: 'joint_delta' });
    env.reset({ seed: 0 });
    const before = Array.from(env.data.ctrl as Float64Array);
    env.step([1, -1, 0.5, 0, 0, 0, 0, 1]);
    const after = Array.from(env.data.ctrl as Float64Array);
    expect(after[0]! - before[0]!).toBeCloseTo(JOINT_STEP, 9);
    expect(after[1]! - before[1]!).toBeCloseTo(-JOINT_STEP, 9);
    expect(after[2]! - before[2]!).toBeCloseTo(0.5 * JOINT_STEP, 9);
    expect(after[3]).toBe(before[3]);
    env.close();
  });

  it('gripper command maps -1..1 onto closed..open finger targets', async () => {
    const env = await makeEnv('reach');
    env.reset({ seed: 0 });
    env.step([0, 0, 0, -1]);
    expect(env.data.ctrl[7]).toBe(0);
    env.step([0, 0, 0, 0]);
    expect(env.data.ctrl[7]).toBeCloseTo(0.02, 12);
    env.close();
  });
});
