/**
 * A vector env worker thread: one WASM module, one compiled model, envs [start, end) of the vector env.
 * It sleeps in Atomics.wait until the main thread bumps its request word, runs the command on its envs
 * reading actions from and writing results to shared memory, then publishes the request number as done.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { makeEnv } from '../env/make.ts';
import type { ManipulationEnv } from '../env/env.ts';
import { ResetNeeded } from '../sim/errors.ts';
import {
  COMMAND,
  CONTROL_STRIDE,
  Command,
  DONE,
  REQUEST,
  sharedViews,
  type AttachMessage,
  type WorkerInit,
  type WorkerMessage,
} from './layout.ts';

const init = workerData as WorkerInit;
const port = parentPort!;

function post(msg: WorkerMessage): void {
  port.postMessage(msg);
}

function errorMessage(err: unknown): WorkerMessage {
  const e = err as { code?: unknown; message?: unknown; stack?: unknown };
  return {
    type: 'error',
    code: typeof e?.code === 'string' ? e.code : 'WORKER_ERROR',
    message: typeof e?.message === 'string' ? e.message : String(err),
    stack: typeof e?.stack === 'string' ? e.stack : undefined,
  };
}

async function main(): Promise<void> {
  const envs: ManipulationEnv[] = [];
  for (let i = init.start; i < init.end; i++) envs.push(await makeEnv(init.task, init.envOptions));
  const first = envs[0]!;
  post({
    type: 'ready',
    obsDim: first.obsDim,
    actDim: first.actDim,
    obsNames: [...first.obsNames],
    episodeSteps: first.episodeSteps,
    nbody: first.model.nbody,
    ...(first.imageObs
      ? { images: { cameras: [...first.imageObs.cameras], size: first.imageObs.size } }
      : {}),
  });
  const attach = await new Promise<AttachMessage>((resolve) => port.once('message', resolve));
  const v = sharedViews(attach.buffer, attach.layout);
  const { obsDim, actDim } = attach.layout;
  const base = init.workerIndex * CONTROL_STRIDE;
  // Envs whose episode ended on the previous step: in next-step mode their next step is a reset.
  const pendingReset = new Uint8Array(envs.length);
  const action = new Float32Array(actDim);
  const imageBytes = attach.layout.imageBytes;
  /** Renders sub-env k's image observations into its slot of the shared image buffer. */
  const renderImages = (k: number): void => {
    const env = envs[k]!;
    const spec = env.imageObs;
    if (!spec || imageBytes === 0) return;
    // A reward model queried every k-th step needs frames only then; the others keep the last frame.
    if (env.episodeStep % init.imageEvery !== 0) return;
    let at = (init.start + k) * imageBytes;
    for (const camera of spec.cameras) {
      const rgb = env.renderer.render(env.data, camera, spec.size, spec.size).rgb;
      v.images.set(rgb, at);
      at += rgb.length;
    }
  };

  const { poseEnvs, nbody } = attach.layout;
  /** Copies sub-env k's body poses into the shared pose array when it is one of the shown envs. */
  const writePoses = (k: number): void => {
    const i = init.start + k;
    if (i >= poseEnvs) return;
    const { xpos, xquat } = envs[k]!.data;
    let at = i * nbody * 7;
    for (let b = 0; b < nbody; b++, at += 7) {
      v.poses[at] = xpos[3 * b];
      v.poses[at + 1] = xpos[3 * b + 1];
      v.poses[at + 2] = xpos[3 * b + 2];
      v.poses[at + 3] = xquat[4 * b];
      v.poses[at + 4] = xquat[4 * b + 1];
      v.poses[at + 5] = xquat[4 * b + 2];
      v.poses[at + 6] = xquat[4 * b + 3];
    }
  };

  /** Starts a new episode in sub-env k (global index i): its first observation, images, zeroed step results. */
  const startEpisode = (k: number, i: number, seed: number | undefined): void => {
    envs[k]!.resetInto(v.obs, i * obsDim, seed);
    renderImages(k);
    writePoses(k);
    pendingReset[k] = 0;
    v.progress[i] = envs[k]!.oracleProgress() ?? NaN;
    v.dense[i] = 0;
    v.rewards[i] = 0;
    v.terminated[i] = 0;
    v.truncated[i] = 0;
    v.success[i] = 0;
    v.final[i] = 0;
    v.episodeStep[i] = 0;
  };

  const reset = (): void => {
    for (let k = 0; k < envs.length; k++) {
      const i = init.start + k;
      if (!v.resetMask[i]) continue;
      const seed = v.resetSeeds[i]!;
      startEpisode(k, i, Number.isNaN(seed) ? undefined : seed);
    }
  };

  const step = (): void => {
    for (let k = 0; k < envs.length; k++) {
      const i = init.start + k;
      const env = envs[k]!;
      v.final[i] = 0;
      if (init.autoreset === 'next-step' && pendingReset[k]) {
        // Gymnasium next-step autoreset: this step's action is ignored; the env resets and reports the new
        // episode's first observation with reward 0 and both flags false.
        startEpisode(k, i, undefined);
        continue;
      }
      if (init.autoreset === 'disabled' && (v.terminated[i] || v.truncated[i])) {
        throw new ResetNeeded(
          `sub-env ${i} has ended and autoreset is disabled; reset it with reset({ options: { reset_mask } })`,
        );
      }
      for (let j = 0; j < actDim; j++) action[j] = v.actions[i * actDim + j]!;
      const flags = env.stepInto(action, v.obs, i * obsDim);
      v.rewards[i] = flags.reward;
      v.terminated[i] = flags.terminated ? 1 : 0;
      v.truncated[i] = flags.truncated ? 1 : 0;
      v.success[i] = flags.success ? 1 : 0;
      v.episodeStep[i] = env.episodeStep;
      v.dense[i] = env.denseReward();
      if (flags.terminated || flags.truncated) ended(k, i);
      // After a same-step reset this is the new episode's first state, like the observation.
      v.progress[i] = env.oracleProgress() ?? NaN;
      // Images match the observation returned: the last state of an ended episode, or (same-step) the new one.
      renderImages(k);
      writePoses(k);
    }
  };

  /** Bookkeeping for sub-env k (global index i) whose episode just ended, per autoreset mode. */
  const ended = (k: number, i: number): void => {
    if (init.autoreset === 'next-step') {
      pendingReset[k] = 1;
    } else if (init.autoreset === 'same-step') {
      const env = envs[k]!;
      v.finalObs.set(v.obs.subarray(i * obsDim, (i + 1) * obsDim), i * obsDim);
      v.final[i] = 1;
      v.finalSuccess[i] = v.success[i]!;
      v.finalEpisodeStep[i] = env.episodeStep;
      env.resetInto(v.obs, i * obsDim);
      v.success[i] = 0;
      v.episodeStep[i] = 0;
    }
  };

  let seen = 0;
  for (;;) {
    Atomics.wait(v.control, base + REQUEST, seen);
    seen = Atomics.load(v.control, base + REQUEST);
    const command = v.control[base + COMMAND] as Command;
    try {
      if (command === Command.Reset) reset();
      else if (command === Command.Step) step();
    } catch (err) {
      // The main thread learns of the failure from this message; DONE is not published for this request.
      post(errorMessage(err));
      continue;
    }
    Atomics.store(v.control, base + DONE, seen);
    Atomics.notify(v.control, base + DONE);
    if (command === Command.Close) break;
  }
  for (const env of envs) env.close();
  port.close();
}

main().catch((err: unknown) => {
  post(errorMessage(err));
  // Let the message flush before the thread ends; the main thread treats the error as fatal either way.
  setTimeout(() => process.exit(1), 50);
});
