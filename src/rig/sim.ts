/**
 * A simulated rig: one of our envs, in its own process, speaking the rig protocol exactly as a real robot would
 * (cameras rendered and PNG- or JPEG-encoded or sent raw, proprioception = the env's observation vector, the server's
 * actions applied at the control rate). The reference for rig authors and the workhorse of the rig tests.
 *
 * What it does that a real rig would: holds its previous command when an action comes late (and says so in the
 * next observation), lets a "human" (the task's scripted expert) take over on a fraction of steps and reports
 * those as interventions, reports success from its sensor (the task's success predicate) unless told it has
 * none, and resets on the time limit.
 */
import { makeEnv } from '../env/make.ts';
import { Rng } from '../env/rng.ts';
import type { RigEpisodeEnd, RigSpec } from '../protocol/index.ts';
import { encodePng } from '../render/png.ts';
import { InvalidArgument } from '../sim/errors.ts';
import { ConnectRefused } from '../bridge/client.ts';
import { actionOf, RigClient, RigRequestFailed } from './client.ts';
import { encodeJpeg } from './jpeg.ts';

export interface RigSimOptions {
  /** Task name or path. */
  env: string;
  url: string;
  token?: string;
  /** Episodes to complete (default 1). */
  episodes?: number;
  /** Rig name (default `sim-<task>`). */
  name?: string;
  /** Declared control rate; default the env's own (1 / (frame skip * timestep)). */
  rateHz?: number;
  /** Step as fast as the server answers instead of at the control rate. */
  fast?: boolean;
  /** End episodes after this many observations (a time limit shorter than the task's). */
  maxSteps?: number;
  cameras?: readonly string[];
  /** Square image size (default 96). */
  size?: number;
  encoding?: 'png' | 'raw' | 'jpeg';
  /** JPEG quality 1..100 (default 90). */
  jpegQuality?: number;
  seed?: number;
  /** Fraction of steps on which the expert takes over, reported as interventions (default 0). */
  interventionRate?: number;
  /** Declare no success sensor: the server's reward model decides success. */
  noSuccessSensor?: boolean;
  /** Leading steps left out of the latency figures (JIT and WASM tier-up, the first ONNX run). Default 0. */
  warmupSteps?: number;
  /** Called after every acknowledged step (tests use it to kill the rig mid-episode). */
  onStep?: (info: { episode: number; step: number; seq: number }) => void;
  signal?: AbortSignal;
}

export interface RigSimSummary {
  rig: string;
  env: string;
  episodes: number;
  steps: number;
  successes: number;
  /** Actions the server flagged late (the rig held its command instead). */
  late: number;
  interventions: number;
  /** Observation sent -> action received, ms. */
  latencyMs: { p50: number; p99: number; mean: number; max: number };
  stepsPerS: number;
  rateHz: number;
  ended: RigEpisodeEnd[];
  policy: string;
  reward: string;
  /** Why it stopped before completing `episodes`: the server shut down (e.g. a `train --rig` run finished) or the signal. */
  stoppedBy?: 'server_shutdown' | 'aborted';
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

export async function runRigSim(o: RigSimOptions): Promise<RigSimSummary> {
  const env = await makeEnv(o.env);
  const cameras = o.cameras ?? ['front', 'side', 'wrist'];
  const size = o.size ?? 96;
  const encoding = o.encoding ?? 'png';
  const episodes = o.episodes ?? 1;
  const controlHz = 1 / (env.frameSkip * env.model.opt.timestep);
  const rateHz = o.rateHz ?? controlHz;
  if (!(rateHz > 0 && rateHz <= 1000))
    throw new InvalidArgument('--rate', `must be in (0, 1000] Hz, got ${rateHz}`);
  const interventionRate = o.interventionRate ?? 0;
  if (!(interventionRate >= 0 && interventionRate <= 1)) {
    throw new InvalidArgument('--intervention-rate', `must be in [0, 1], got ${interventionRate}`);
  }
  const spec: RigSpec = {
    name: o.name ?? `sim-${env.task.name}`,
    instruction: env.task.instruction,
    cameras: cameras.map((name) => ({ name, width: size, height: size, encoding })),
    proprio: { names: [...env.obsNames] },
    action: {
      dim: env.actDim,
      low: Array.from({ length: env.actDim }, () => -1),
      high: Array.from({ length: env.actDim }, () => 1),
      rateHz,
    },
    successSensor: !o.noSuccessSensor,
  };
  const rig = await RigClient.connect(o.url, o.token, spec, { client: `pbridge rig-sim ${env.task.name}` });
  const rng = new Rng((o.seed ?? 0) ^ 0x51a51a);
  const obs = new Float32Array(env.obsDim);
  const expert = new Float32Array(env.actDim);
  const latencies: number[] = [];
  const ended: RigEpisodeEnd[] = [];
  let seed = o.seed ?? 0;
  let steps = 0;
  let late = 0;
  let interventions = 0;
  const t0 = performance.now();
  const period = 1000 / rateHz;
  let stoppedBy: RigSimSummary['stoppedBy'];
  try {
    while (ended.length < episodes && !o.signal?.aborted) {
      env.resetInto(obs, 0, seed++);
      let applied: Float32Array = new Float32Array(env.actDim);
      let held = false;
      let intervention: Float32Array | undefined;
      let success = false;
      let final = false;
      let episodeEnd: RigEpisodeEnd | undefined;
      const start = performance.now();
      for (let k = 0; !o.signal?.aborted; k++) {
        const frames: Record<string, Uint8Array> = {};
        for (const cam of cameras) {
          const f = env.render(cam, size);
          frames[cam] =
            encoding === 'png'
              ? encodePng(f.rgb, f.width, f.height)
              : encoding === 'jpeg'
                ? encodeJpeg(f.rgb, f.width, f.height, o.jpegQuality ?? 90)
                : f.rgb;
        }
        const sent = performance.now();
        const reply = await rig.step({
          frames,
          proprio: obs,
          time: Date.now() / 1000,
          ...(spec.successSensor ? { success } : {}),
          ...(intervention ? { intervention } : {}),
          ...(held ? { held } : {}),
          ...(env.oracleProgress() !== undefined ? { privileged: env.oracleProgress()! } : {}),
        });
        if (steps >= (o.warmupSteps ?? 0)) latencies.push(performance.now() - sent);
        steps++;
        o.onStep?.({ episode: reply.episode, step: reply.step, seq: reply.seq });
        if (reply.ended) {
          episodeEnd = reply.ended;
          break;
        }
        if (final || (o.maxSteps !== undefined && k + 1 >= o.maxSteps)) break;
        held = reply.late;
        if (reply.late) late++;
        else applied = actionOf(reply);
        intervention = undefined;
        if (interventionRate > 0 && rng.uniform(0, 1) < interventionRate) {
          env.expertAction(expert);
          applied = expert.slice();
          intervention = applied;
          interventions++;
        }
        const flags = env.stepInto(applied, obs, 0);
        success = flags.success;
        final = flags.terminated || flags.truncated;
        if (!o.fast) {
          const wait = start + (k + 1) * period - performance.now();
          if (wait > 0) await sleep(wait);
        }
      }
      if (o.signal?.aborted) break;
      const ep = await rig.reset(episodeEnd ? 'episode_end' : 'time_limit');
      const end = episodeEnd ?? ep.ended;
      if (end) ended.push(end);
    }
  } catch (err) {
    // A server going away (1001) is the end of the session, not a rig failure: report what was done.
    // The host may end the episode (server_shutdown) just before the socket closes: the step in flight is then
    // refused as belonging to an ended episode.
    const closing =
      (err instanceof ConnectRefused && err.closeCode === 1001) ||
      (err instanceof RigRequestFailed &&
        err.code === 'EPISODE_MISMATCH' &&
        err.status.message.includes('(server_shutdown)'));
    if (!closing) throw err;
    stoppedBy = 'server_shutdown';
  } finally {
    rig.close();
    env.close();
  }
  const sorted = Float64Array.from(latencies).sort();
  const elapsed = (performance.now() - t0) / 1000;
  return {
    rig: spec.name,
    env: env.task.name,
    episodes: ended.length,
    steps,
    successes: ended.filter((e) => e.success).length,
    late,
    interventions,
    latencyMs: {
      p50: percentile(sorted, 0.5),
      p99: percentile(sorted, 0.99),
      mean: latencies.reduce((a, b) => a + b, 0) / Math.max(1, latencies.length),
      max: sorted.length ? sorted[sorted.length - 1]! : NaN,
    },
    stepsPerS: steps / Math.max(1e-9, elapsed),
    rateHz,
    ended,
    policy: rig.ready.policy,
    reward: rig.ready.reward,
    ...(stoppedBy
      ? { stoppedBy }
      : o.signal?.aborted && ended.length < episodes
        ? { stoppedBy: 'aborted' as const }
        : {}),
  };
}
