/**
 * What a training run shows in the browser viewer: the shown envs' poses after every step, the Phi answers of
 * their episodes as they arrive (with the sparse reward and the shaped reward they imply), the camera frames the
 * reward model saw (thumbnails, at the hub's low rate), every finished episode, and per-update training scalars.
 * Everything goes through the hub's non-blocking Publisher calls, so watching never slows training down.
 */
import type { Publisher } from '../bridge/hub.ts';
import { encodePng } from '../render/png.ts';
import type { VectorEnv, VectorStepResult } from '../vector/vector-env.ts';
import type { UpdateMetrics } from './trainer.ts';

interface Shown {
  episode: number;
  /** Sparse reward of the transition into each state of the current episode (index = state). */
  sparse: number[];
  /** Phi of each answered state of the current episode. */
  phi: Map<number, number>;
  return: number;
}

export class LiveView {
  private readonly shown: Shown[];

  constructor(
    private readonly hub: Publisher,
    readonly shownEnvs: number,
    private readonly gamma: number,
    private readonly cameras: readonly string[],
    private readonly imageSize: number,
    private readonly controlDt: number,
  ) {
    this.shown = Array.from({ length: shownEnvs }, () => ({
      episode: 0,
      sparse: [0],
      phi: new Map(),
      return: 0,
    }));
  }

  /** After a reset of all envs (first episodes, or a checkpoint boundary). */
  reset(venv: VectorEnv, episodeOf: (env: number) => number, images?: Record<string, Uint8Array>): void {
    for (let n = 0; n < this.shownEnvs; n++) {
      this.shown[n] = { episode: episodeOf(n), sparse: [0], phi: new Map(), return: 0 };
      this.publishPoses(venv, n, 0);
      this.thumbnails(n, 0, images);
    }
  }

  step(venv: VectorEnv, res: VectorStepResult, totalSteps: number, episodeOf: (env: number) => number): void {
    for (let n = 0; n < this.shownEnvs; n++) {
      const s = this.shown[n]!;
      s.return += res.rewards[n]!;
      if (res.terminated[n] || res.truncated[n]) {
        this.hub.episode({
          env: n,
          episode: s.episode,
          return: s.return,
          length: res.info.final_info?.episode_step[n] ?? 0,
          success: res.info.final_info?.is_success[n] === 1,
          totalSteps,
        });
        this.shown[n] = { episode: episodeOf(n), sparse: [0], phi: new Map(), return: 0 };
      } else {
        s.sparse[res.info.episode_step[n]!] = res.rewards[n]!;
      }
      const step = res.info.episode_step[n]!;
      this.publishPoses(venv, n, step);
      this.thumbnails(n, step, res.images);
    }
  }

  /** A model answer for state `state` of episode `episode` of env `env`. */
  answer(env: number, episode: number, state: number, phi: number): void {
    const s = this.shown[env];
    if (!s || s.episode !== episode || !Number.isFinite(phi)) return;
    s.phi.set(state, phi);
    const prev = s.phi.get(state - 1);
    const sparse = s.sparse[state] ?? 0;
    // What the shaped reward of the transition into this state will be if nothing else arrives late.
    const shaped = state === 0 || prev === undefined ? 0 : sparse + this.gamma * phi - prev;
    this.hub.progress(env, { episode, step: state, phi, shaped, sparse }, 'reward model');
  }

  update(m: UpdateMetrics): void {
    publishUpdateMetrics(this.hub, m);
  }

  private publishPoses(venv: VectorEnv, n: number, step: number): void {
    const { pos, quat } = venv.poses(n);
    this.hub.poses(n, pos, quat, step * this.controlDt);
  }

  private thumbnails(n: number, step: number, images: Record<string, Uint8Array> | undefined): void {
    if (!images) return;
    const size = this.imageSize;
    const per = size * size * 3;
    for (const camera of this.cameras) {
      const all = images[camera];
      if (!all || !this.hub.thumbnailDue(n, camera)) continue;
      const rgb = all.subarray(n * per, (n + 1) * per);
      this.hub.thumbnail(n, camera, step, {
        mime: 'image/png',
        width: size,
        height: size,
        data: encodePng(rgb, size, size),
      });
    }
  }
}

/** One update's scalars for the viewer's training panel. */
export function publishUpdateMetrics(hub: Publisher, m: UpdateMetrics): void {
  hub.metrics(m.step, {
    success_rate: m.success_rate,
    return_mean: m.return_mean,
    'phi/mean': m.phi.mean,
    'reward/shaped_mean': m.reward.shaped_mean,
    'reward/sparse_mean': m.reward.sparse_mean,
    'loss/policy': m.losses.policy,
    'loss/value': m.losses.value,
    entropy: m.losses.entropy,
    approx_kl: m.approx_kl,
    steps_per_s: m.timings.steps_per_s,
    ...(m.eval ? { 'eval/success_rate': m.eval.success_rate } : {}),
  });
}
