/** Shared pieces of the rig tests: a server with a temporary store, a small synthetic rig, a test reward model. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RigHostOptions } from '../src/bridge/rig/host.ts';
import { BridgeServer, type BridgeOptions } from '../src/bridge/server.ts';
import type { RigSpec } from '../src/protocol/index.ts';
import type { ProgressModel, ProgressRequest, ProgressResponse } from '../src/reward/model.ts';
import { RewardService } from '../src/reward/service.ts';
import type { RigObservation } from '../src/rig/client.ts';

export const TOKEN = 'rig-test-token';

export function tempStore(): string {
  return mkdtempSync(join(tmpdir(), 'pb-rig-store-'));
}

export async function startRigServer(
  rig: Partial<RigHostOptions> = {},
  options: BridgeOptions = {},
): Promise<BridgeServer> {
  return BridgeServer.start({
    port: 0,
    token: TOKEN,
    staticDir: false,
    ...options,
    rig: { storeDir: tempStore(), ...rig },
  });
}

/** A rig with one 8x8 raw camera, three proprio values and a two-dimensional action at 10 Hz. */
export function smallSpec(over: Partial<RigSpec> = {}): RigSpec {
  return {
    name: 'bench-arm',
    instruction: 'push the cube to the target',
    cameras: [{ name: 'front', width: 8, height: 8, encoding: 'raw' }],
    proprio: { names: ['q0', 'q1', 'q2'] },
    action: { dim: 2, low: [-1, -0.5], high: [1, 0.5], rateHz: 10 },
    successSensor: true,
    ...over,
  };
}

/** Observation k of the small rig: the frame's brightness and the proprio values encode k. */
export function smallObs(k: number, over: Partial<RigObservation> = {}): RigObservation {
  return {
    frames: { front: new Uint8Array(8 * 8 * 3).fill((k * 10) % 256) },
    proprio: Float32Array.from([k, -k, 0.5]),
    time: 1000 + k * 0.1,
    success: false,
    ...over,
  };
}

/**
 * A real (if trivial) image progress model: progress is the mean brightness of the `front` view / 255. It
 * exercises the whole path (decode, batch, answer, shaping) with answers a test can predict.
 */
export class BrightnessModel implements ProgressModel {
  readonly id = 'brightness@test';
  readonly maxBatch = 16;
  readonly cameras = ['front'];
  async predict(batch: readonly ProgressRequest[]): Promise<Omit<ProgressResponse, 'latencyMs'>[]> {
    return batch.map((r) => {
      const img = r.views.front!;
      let sum = 0;
      for (const v of img.rgb) sum += v;
      return { progress: sum / img.rgb.length / 255, status: 'ok' as const, model: this.id };
    });
  }
}

export function brightnessReward(): NonNullable<RigHostOptions['reward']> {
  const model = new BrightnessModel();
  const service = new RewardService(model, { maxWaitMs: 0 });
  return { service, id: model.id, cameras: model.cameras, close: () => service.close() };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls until `f` returns a value other than undefined, or throws after `timeoutMs`. */
export async function until<T>(
  f: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 10_000,
): Promise<T> {
  const end = performance.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (performance.now() > end) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(20);
  }
}
