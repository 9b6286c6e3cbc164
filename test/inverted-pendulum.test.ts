/**
 * Our InvertedPendulum against expectations worked out here, independently of MuJoCo. Proves: the compiled masses
 * and pole inertia are those of the specified capsules at density 1000; with zero action a pole started 0.01 rad
 * off vertical falls and the episode terminates on the step where |angle| first exceeds 0.2, at the time a planar
 * cart-pole model (Lagrange equations, same masses, damping and 1 mm lean, integrated finely) predicts; a positive
 * action accelerates the cart in +x by the force 100 * a, with the model's velocity after one step; actions beyond
 * [-3, 3] saturate; reward is 1 per step and 0 on the terminating step; a balancing controller is truncated at
 * exactly 1000 steps; reset noise stays within +-0.01; the same seed gives the same episode.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  EPISODE_STEPS,
  FRAME_SKIP,
  InvertedPendulumEnv,
  MAX_POLE_ANGLE,
} from '../envs/inverted-pendulum/env.ts';
import { Rng } from '../src/env/rng.ts';
import { InvalidAction, ResetNeeded } from '../src/sim/errors.ts';

let env: InvertedPendulumEnv;
beforeAll(async () => {
  env = await InvertedPendulumEnv.create();
});
afterAll(() => env.close());

// The specification's geometry; masses follow from it at MuJoCo's default density.
const DENSITY = 1000;
const G = 9.81;
const DAMPING = 1;
const GEAR = 100;
const CONTROL_DT = 0.02 * FRAME_SKIP;
const capsuleVolume = (r: number, len: number): number => Math.PI * r * r * len + (4 / 3) * Math.PI * r ** 3;
const CART_MASS = DENSITY * capsuleVolume(0.1, 0.2);
const POLE_R = 0.049;
const POLE_LEN = Math.hypot(0.6, 0.001);
const POLE_MASS = DENSITY * capsuleVolume(POLE_R, POLE_LEN);
/** Hinge to pole centre of mass, and the angle by which the 1 mm lean tilts it off the pole's zero angle. */
const COM_DIST = POLE_LEN / 2;
const LEAN = Math.atan2(0.001, 0.6);
/** Pole inertia about its centre, across its axis: a cylinder plus two hemispheres (83/320 m r^2 each). */
const POLE_I_COM = ((): number => {
  const mCyl = DENSITY * Math.PI * POLE_R ** 2 * POLE_LEN;
  const mHemi = DENSITY * (2 / 3) * Math.PI * POLE_R ** 3;
  const d = POLE_LEN / 2 + (3 * POLE_R) / 8;
  return (
    (mCyl * (3 * POLE_R ** 2 + POLE_LEN ** 2)) / 12 + 2 * ((83 / 320) * mHemi * POLE_R ** 2 + mHemi * d * d)
  );
})();

/**
 * Planar cart-pole, state [x, theta, vx, omega], cart force F. With phi = theta + lean:
 *   (M + m) x'' + m l cos(phi) theta'' - m l sin(phi) omega^2 = F - b vx
 *   m l cos(phi) x'' + (I + m l^2) theta'' - m g l sin(phi)   = -b omega
 * integrated with RK4 at 1 ms.
 */
function simulateModel(state: number[], force: number, seconds: number): number[] {
  const M = CART_MASS;
  const m = POLE_MASS;
  const l = COM_DIST;
  const Ip = POLE_I_COM + m * l * l;
  const deriv = (s: number[]): number[] => {
    const [, th, vx, om] = s as [number, number, number, number];
    const phi = th + LEAN;
    const a11 = M + m;
    const a12 = m * l * Math.cos(phi);
    const a22 = Ip;
    const r1 = force - DAMPING * vx + m * l * Math.sin(phi) * om * om;
    const r2 = m * G * l * Math.sin(phi) - DAMPING * om;
    const det = a11 * a22 - a12 * a12;
    return [vx, om, (r1 * a22 - a12 * r2) / det, (a11 * r2 - a12 * r1) / det];
  };
  const h = 1e-3;
  let s = state.slice();
  for (let k = 0; k < Math.round(seconds / h); k++) {
    const k1 = deriv(s);
    const k2 = deriv(s.map((v, i) => v + (h / 2) * k1[i]!));
    const k3 = deriv(s.map((v, i) => v + (h / 2) * k2[i]!));
    const k4 = deriv(s.map((v, i) => v + h * k3[i]!));
    s = s.map((v, i) => v + (h / 6) * (k1[i]! + 2 * k2[i]! + 2 * k3[i]! + k4[i]!));
  }
  return s;
}

describe('InvertedPendulum (Gymnasium InvertedPendulum-v5 specification)', () => {
  it('has the masses and pole inertia of the specified capsules', () => {
    const mass = env.model.body_mass;
    expect(mass[1]).toBeCloseTo(CART_MASS, 6);
    expect(mass[2]).toBeCloseTo(POLE_MASS, 6);
    // body_inertia is about the principal axes at the centre of mass; the two across the pole are equal.
    expect(env.model.body_inertia[2 * 3]).toBeCloseTo(POLE_I_COM, 4);
    expect(CART_MASS).toBeCloseTo(10.47, 2);
    expect(POLE_MASS).toBeCloseTo(5.02, 2);
  });

  it('with zero action the pole falls and terminates when the cart-pole model says |angle| passes 0.2', () => {
    // Small-angle estimate first, as an order-of-magnitude bound: the pole diverges like exp(lambda t) with
    // lambda^2 ~ m g l / (I + m l^2 - m^2 l^2 / (M + m)), about 5.7/s without damping; from 0.01 rad to 0.2 takes
    // acosh(20) / lambda ~ 0.65 s, longer with damping: 16 to 30 steps of 0.04 s.
    const m = POLE_MASS;
    const l = COM_DIST;
    const lambda = Math.sqrt((m * G * l) / (POLE_I_COM + m * l * l - (m * m * l * l) / (CART_MASS + m)));
    const undampedSteps = Math.acosh(MAX_POLE_ANGLE / 0.01) / lambda / CONTROL_DT;
    expect(undampedSteps).toBeGreaterThan(15);

    // The model's step of termination: the first control step that ends beyond 0.2 rad.
    let s = [0, 0.01, 0, 0];
    let modelSteps = 0;
    while (Math.abs(s[1]!) <= MAX_POLE_ANGLE && modelSteps < 200) {
      s = simulateModel(s, 0, CONTROL_DT);
      modelSteps++;
    }

    env.setState([0, 0.01], [0, 0]);
    let steps = 0;
    let last;
    const rewards: number[] = [];
    do {
      last = env.step([0]);
      rewards.push(last.reward);
      steps++;
    } while (!last.terminated && !last.truncated);
    expect(last.terminated).toBe(true);
    expect(last.truncated).toBe(false);
    expect(Math.abs(last.obs[1]!)).toBeGreaterThan(MAX_POLE_ANGLE);
    expect(steps).toBeGreaterThanOrEqual(Math.floor(undampedSteps));
    expect(steps).toBeLessThan(2 * undampedSteps);
    expect(Math.abs(steps - modelSteps)).toBeLessThanOrEqual(1);
    // The pole fell forward (+angle, the way the lean tips it) and the reaction pushed the cart back.
    expect(last.obs[1]).toBeGreaterThan(0);
    expect(last.obs[2]).toBeLessThan(0);
    expect(rewards.slice(0, -1).every((r) => r === 1)).toBe(true);
    expect(rewards.at(-1)).toBe(0);
    expect(() => env.step([0])).toThrow(ResetNeeded);
  });

  it('a positive action accelerates the cart in +x by the force 100 * a', () => {
    for (const a of [0.5, -1]) {
      env.setState([0, 0], [0, 0]);
      const r = env.step([a]);
      const want = simulateModel([0, 0, 0, 0], GEAR * a, CONTROL_DT);
      expect(Math.sign(r.obs[2]!)).toBe(Math.sign(a));
      expect(Math.sign(r.obs[0]!)).toBe(Math.sign(a));
      // Pushing the cart one way tips the pole the other way.
      expect(Math.sign(r.obs[3]!)).toBe(-Math.sign(a));
      expect(r.obs[2]!).toBeCloseTo(want[2]!, 3);
      expect(r.obs[3]!).toBeCloseTo(want[3]!, 2);
    }
  });

  it('saturates actions at [-3, 3] and rejects NaN', () => {
    env.setState([0, 0], [0, 0]);
    const at3 = env.step([3]).obs;
    env.setState([0, 0], [0, 0]);
    const at10 = env.step([10]).obs;
    expect(Array.from(at10)).toEqual(Array.from(at3));
    expect(() => env.step([NaN])).toThrow(InvalidAction);
    expect(() => env.step([0, 0])).toThrow(InvalidAction);
  });

  it('a balancing controller is truncated at exactly 1000 steps with return 1000', () => {
    let obs = env.reset(3).obs;
    let ret = 0;
    let r;
    do {
      // A hand-tuned linear state feedback: push the cart under the pole.
      const a = 10 * obs[1]! + 2 * obs[3]! + 0.5 * obs[0]! + 0.5 * obs[2]!;
      r = env.step([a]);
      ret += r.reward;
      obs = r.obs;
    } while (!r.terminated && !r.truncated);
    expect(r.truncated).toBe(true);
    expect(r.terminated).toBe(false);
    expect(env.episodeStep).toBe(EPISODE_STEPS);
    expect(ret).toBe(EPISODE_STEPS);
  });

  it('reset noise is uniform within +-0.01 on qpos and qvel, and the same seed replays the same episode', () => {
    const maxAbs = [0, 0, 0, 0];
    for (let seed = 0; seed < 200; seed++) {
      const obs = env.reset(seed).obs;
      obs.forEach((v, i) => (maxAbs[i] = Math.max(maxAbs[i]!, Math.abs(v))));
    }
    for (const m of maxAbs) {
      expect(m).toBeLessThanOrEqual(0.01);
      expect(m).toBeGreaterThan(0.009);
    }

    const episode = (seed: number): number[][] => {
      const rng = new Rng(42);
      const out = [Array.from(env.reset(seed).obs)];
      for (let t = 0; t < 30; t++) {
        const r = env.step([rng.uniform(-3, 3)]);
        out.push(Array.from(r.obs));
        if (r.terminated) break;
      }
      return out;
    };
    const a = episode(7);
    expect(episode(7)).toEqual(a);
    expect(episode(8)[0]).not.toEqual(a[0]);
  });
});
