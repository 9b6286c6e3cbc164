/**
 * Potential-based shaping: policy invariance checked by value iteration on random tabular MDPs, the semantic
 * trap of the naive mode on a hand-built MDP, and the bookkeeping rules (terminal, truncation, reset, late and
 * missing answers) on hand-worked sequences.
 */
import { describe, expect, it } from 'vitest';
import { Rng } from '../src/env/rng.ts';
import {
  checkShapingConfig,
  EpisodePotentials,
  shapedReward,
  toPotential,
  type ShapingMode,
} from '../src/reward/shaping.ts';

/** A tabular MDP: P[s][a] is a distribution over next states; R[s][a] the expected reward; terminal states end. */
interface Mdp {
  S: number;
  A: number;
  P: number[][][];
  R: number[][];
  terminal: boolean[];
}

/**
 * Greedy policy of the expected shaped reward R'(s, a) = R(s, a) + sum_s' P(s'|s, a) * shaping(s, s'), found by
 * value iteration to convergence. Terminal states have value 0 (the episode ends on entering them).
 */
function optimalPolicy(
  mdp: Mdp,
  gamma: number,
  mode: ShapingMode,
  phi: number[],
): { policy: number[]; Q: number[][] } {
  const cfg = checkShapingConfig({ mode, gamma });
  const V = new Array<number>(mdp.S).fill(0);
  const Q = mdp.R.map((row) => row.map(() => 0));
  for (let iter = 0; iter < 5000; iter++) {
    let delta = 0;
    for (let s = 0; s < mdp.S; s++) {
      if (mdp.terminal[s]) continue;
      let best = -Infinity;
      for (let a = 0; a < mdp.A; a++) {
        let q = 0;
        for (let s2 = 0; s2 < mdp.S; s2++) {
          const p = mdp.P[s]![a]![s2]!;
          if (p === 0) continue;
          const r = shapedReward(cfg, mdp.R[s]![a]!, phi[s]!, phi[s2]!, mdp.terminal[s2]!, false);
          q += p * (r + (mdp.terminal[s2] ? 0 : gamma * V[s2]!));
        }
        Q[s]![a] = q;
        best = Math.max(best, q);
      }
      delta = Math.max(delta, Math.abs(best - V[s]!));
      V[s] = best;
    }
    if (delta < 1e-12) break;
  }
  const policy = Q.map((row) => row.indexOf(Math.max(...row)));
  return { policy, Q };
}

function randomMdp(rng: Rng): Mdp {
  const S = 3 + rng.int(6);
  const A = 2 + rng.int(3);
  const terminal = Array.from({ length: S }, (_, s) => s === S - 1 || rng.random() < 0.15);
  const P = Array.from({ length: S }, () =>
    Array.from({ length: A }, () => {
      // Sparse random transitions: each action reaches 1-3 states.
      const row = new Array<number>(S).fill(0);
      const k = 1 + rng.int(3);
      for (let i = 0; i < k; i++) row[rng.int(S)]! += rng.random() + 0.1;
      const sum = row.reduce((x, y) => x + y, 0);
      return row.map((x) => x / sum);
    }),
  );
  const R = Array.from({ length: S }, () =>
    Array.from({ length: A }, () => (rng.random() < 0.3 ? rng.uniform(-1, 1) : 0)),
  );
  return { S, A, P, R, terminal };
}

describe('potential-based shaping', () => {
  it('leaves the optimal policy of random MDPs unchanged for random potentials with Phi(terminal) = 0', () => {
    const rng = new Rng(2024);
    let compared = 0;
    for (let trial = 0; trial < 200; trial++) {
      const mdp = randomMdp(rng);
      const gamma = rng.uniform(0.5, 0.99);
      const phi = Array.from({ length: mdp.S }, (_, s) => (mdp.terminal[s] ? 0 : rng.random()));
      const plain = optimalPolicy(mdp, gamma, 'sparse', phi);
      const shaped = optimalPolicy(mdp, gamma, 'potential', phi);
      for (let s = 0; s < mdp.S; s++) {
        if (mdp.terminal[s]) continue;
        // Ng et al.: Q'(s, a) = Q(s, a) - Phi(s) for every action, hence the same argmax (ties aside).
        for (let a = 0; a < mdp.A; a++) expect(shaped.Q[s]![a]).toBeCloseTo(plain.Q[s]![a]! - phi[s]!, 6);
        const sorted = [...plain.Q[s]!].sort((x, y) => y - x);
        if (sorted[0]! - sorted[1]! > 1e-6) {
          expect(shaped.policy[s]).toBe(plain.policy[s]);
          compared++;
        }
      }
    }
    expect(compared).toBeGreaterThan(300);
  });

  it('the naive mode falls into the semantic trap on a hand-built MDP; potential shaping does not', () => {
    // State 0: the agent is almost done (Phi = 0.95). Action 0 finishes: reward 0.5, episode terminated.
    // Action 1 lingers in state 0. gamma = 0.95. Q(0, linger) = reward of lingering once + gamma V(0).
    //   sparse:    V(0) = 0.5 (finish);   Q(0, finish) = 0.5;   Q(0, linger) = 0 + 0.95 * 0.5 = 0.475
    //   potential: Q' = Q - Phi(0):       Q'(0, finish) = -0.45; Q'(0, linger) = 0.475 - 0.95 = -0.475
    //   naive:     finishing pays 0.5 + (0 - 0.95) = -0.45, lingering pays 0.95 - 0.95 = 0 per step forever, so
    //              V(0) = 0 and Q(0, linger) = 0 > Q(0, finish) = -0.45: the agent lingers.
    const mdp: Mdp = {
      S: 2,
      A: 2,
      P: [
        [
          [0, 1],
          [1, 0],
        ],
        [
          [0, 1],
          [0, 1],
        ],
      ],
      R: [
        [0.5, 0],
        [0, 0],
      ],
      terminal: [false, true],
    };
    const phi = [0.95, 0];
    const sparse = optimalPolicy(mdp, 0.95, 'sparse', phi);
    const potential = optimalPolicy(mdp, 0.95, 'potential', phi);
    const naive = optimalPolicy(mdp, 0.95, 'naive', phi);
    expect(sparse.Q[0]![0]).toBeCloseTo(0.5, 9);
    expect(sparse.Q[0]![1]).toBeCloseTo(0.475, 9);
    expect(potential.Q[0]![0]).toBeCloseTo(-0.45, 9);
    expect(potential.Q[0]![1]).toBeCloseTo(-0.475, 9);
    expect(naive.Q[0]![0]).toBeCloseTo(-0.45, 9);
    expect(naive.Q[0]![1]).toBeCloseTo(0, 9);
    expect(sparse.policy[0]).toBe(0);
    expect(potential.policy[0]).toBe(0);
    expect(naive.policy[0]).toBe(1);
  });

  it("naive equals potential plus (1 - gamma) * Phi(s') per step", () => {
    const pot = checkShapingConfig({ mode: 'potential', gamma: 0.9 });
    const naive = checkShapingConfig({ mode: 'naive', gamma: 0.9 });
    const rng = new Rng(8);
    for (let i = 0; i < 100; i++) {
      const [r, a, b] = [rng.uniform(-1, 1), rng.random(), rng.random()];
      expect(shapedReward(naive, r, a, b, false, false)).toBeCloseTo(
        shapedReward(pot, r, a, b, false, false) + 0.1 * b,
        12,
      );
    }
  });
});

describe('transition rules', () => {
  const cfg = checkShapingConfig({ mode: 'potential', gamma: 0.9, scale: 2 });

  it('terminated: Phi(next) is 0 whatever the model said; truncated: Phi(s_T) is kept, or 0 without bootstrap', () => {
    // r' = r + k (gamma Phi' - Phi): 1 + 2 (0.9 * 0 - 0.5) = 0.
    expect(shapedReward(cfg, 1, 0.5, 0.8, true, false)).toBeCloseTo(0, 12);
    // 0 + 2 (0.9 * 0.8 - 0.5) = 0.44
    expect(shapedReward(cfg, 0, 0.5, 0.8, false, true)).toBeCloseTo(0.44, 12);
    const noBoot = checkShapingConfig({ mode: 'potential', gamma: 0.9, scale: 2, bootstrapTruncated: false });
    expect(shapedReward(noBoot, 0, 0.5, 0.8, false, true)).toBeCloseTo(-1, 12);
  });

  it('answers are clamped; NaN, Inf and absent answers are missing, never 0', () => {
    expect(toPotential(1.7)).toBe(1);
    expect(toPotential(-0.2)).toBe(0);
    for (const bad of [NaN, Infinity, -Infinity, undefined, null]) expect(toPotential(bad)).toBeNaN();
  });

  it('missing answers hold the previous Phi; leading ones take the first answer; late answers patch until resolved', () => {
    const ep = new EpisodePotentials();
    ep.push(); // s0: no answer yet
    ep.push(NaN); // s1: the model failed
    ep.push(0.4); // s2
    ep.push(); // s3: not queried (stride)
    ep.push(0.6); // s4
    expect(ep.record(3, 0.5)).toBe(true); // a late answer arrives before the deadline
    expect(Array.from(ep.resolve())).toEqual([0.4, 0.4, 0.4, 0.5, 0.6]);
    // Past the deadline a state's value is fixed: a late answer for it is ignored.
    expect(ep.record(1, 0.9)).toBe(false);
    ep.push(); // s5: never answered -> holds 0.6
    expect(Array.from(ep.resolve())).toEqual([0.4, 0.4, 0.4, 0.5, 0.6, 0.6]);
  });

  it('an episode without any answer has Phi = 0 throughout: shaped reward equals the sparse reward', () => {
    const ep = new EpisodePotentials();
    for (let t = 0; t < 4; t++) ep.push(undefined);
    const phi = ep.resolve();
    expect(Array.from(phi)).toEqual([0, 0, 0, 0]);
    for (let t = 0; t < 3; t++)
      expect(shapedReward(cfg, 0.25, phi[t]!, phi[t + 1]!, t === 2, false)).toBe(0.25);
  });

  it('reset starts a fresh episode: nothing carries over', () => {
    const ep = new EpisodePotentials();
    ep.push(0.9);
    ep.push(0.95);
    ep.resolve();
    ep.reset();
    ep.push();
    ep.push(0.1);
    expect(Array.from(ep.resolve())).toEqual([0.1, 0.1]);
    expect(() => ep.record(5, 0.3)).toThrow(/state: must be an integer in \[0, 1\], got 5/);
  });

  it('rejects bad configuration naming the field', () => {
    expect(() => checkShapingConfig({ mode: 'potential', gamma: 1.5 })).toThrow(
      /shaping.gamma: must be in \[0, 1\]/,
    );
    expect(() => checkShapingConfig({ mode: 'dense' as never, gamma: 0.9 })).toThrow(
      /shaping.mode: must be one of/,
    );
  });
});
