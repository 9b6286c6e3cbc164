/**
 * One remote learner's env batch: a VectorEnv of the task, the reward model and per-step shaping, and the
 * translation between wire messages and the vector env's arrays. Replies are built from the vector env's own
 * arrays (no per-env work beyond shaping), so a remote step costs one in-process step plus encoding.
 */
import { resolveTask, TASK_NAMES } from '../../env/registry.ts';
import { openProgressModel, type OpenedModel } from '../../reward/open-model.ts';
import { RewardService } from '../../reward/service.ts';
import { checkShapingConfig } from '../../reward/shaping.ts';
import { parseRewardChoice, type RewardChoice } from '../../train/reward-choice.ts';
import { InvalidArgument, ProgressBridgeError } from '../../sim/errors.ts';
import { VectorEnv, type VectorInfo } from '../../vector/vector-env.ts';
import {
  fromTensor,
  ProtocolError,
  toTensor,
  type VecInfo,
  type VecOpen,
  type VecOpened,
  type VecReset,
  type VecResetResult,
  type VecStep,
  type VecStepResult,
} from '../../protocol/index.ts';
import { StepRewards } from './step-rewards.ts';

export interface BatchLimits {
  /** Task names learners may open besides the built-in ones, mapped to task module paths. */
  tasks: Readonly<Record<string, string>>;
  /** Model sources (.onnx paths, http(s) URLs) learners may name besides `default` and `oracle`. */
  models: readonly string[];
  /** Worker threads per batch (at most numEnvs). */
  workers: number;
  /** Longest wait for the model's answers of one step, ms. */
  rewardDeadlineMs: number;
}

/** Task names this server offers learners. */
export function offeredTasks(limits: BatchLimits): string[] {
  return [...TASK_NAMES, ...Object.keys(limits.tasks)];
}

export class EnvBatch {
  private busy = false;

  private constructor(
    readonly id: number,
    readonly venv: VectorEnv,
    readonly choice: RewardChoice,
    private readonly opened: OpenedModel | undefined,
    private readonly service: RewardService | undefined,
    private readonly shaper: StepRewards,
    readonly description: Omit<VecOpened, 'type' | 'req' | 'env'>,
  ) {}

  /** Opens the batch; errors are ProtocolErrors (bad request) or the env's own (task, worker failures). */
  static async open(id: number, msg: VecOpen, limits: BatchLimits): Promise<EnvBatch> {
    const taskSpec = limits.tasks[msg.task] ?? (TASK_NAMES.includes(msg.task) ? msg.task : undefined);
    if (taskSpec === undefined) {
      // Paths are refused: a task module is code the server would run.
      throw new ProtocolError(
        'UNKNOWN_TASK',
        `unknown task "${msg.task}"; this server offers: ${offeredTasks(limits).join(', ')}`,
        'task',
      );
    }
    let choice: RewardChoice;
    try {
      choice = parseRewardChoice(msg.reward ?? 'sparse', msg.model ?? 'default');
    } catch (err) {
      throw new ProtocolError('INVALID_VALUE', (err as Error).message, 'reward');
    }
    if (
      choice.model &&
      !['default', 'oracle'].includes(choice.model) &&
      !limits.models.includes(choice.model)
    ) {
      throw new ProtocolError(
        'INVALID_VALUE',
        `model "${choice.model}" is not offered to remote learners; use default or oracle, or start the server with it allowed`,
        msg.reward && choice.model === msg.reward ? 'reward' : 'model',
      );
    }
    const shaping = checkShapingConfig({
      mode: choice.mode,
      gamma: msg.gamma ?? 0.99,
      scale: msg.shapingScale ?? 1,
      bootstrapTruncated: msg.bootstrapTruncated ?? true,
    });
    const task = await resolveTask(taskSpec);
    const opened = choice.model ? await openModel(choice.model) : undefined;
    const cameras = opened?.cameras ?? [];
    let venv: VectorEnv;
    try {
      venv = await VectorEnv.create({
        task: taskSpec,
        numEnvs: msg.numEnvs,
        workers: Math.min(msg.numEnvs, limits.workers),
        autoreset: msg.autoreset ?? 'next-step',
        envOptions: {
          ...(msg.actionMode ? { actionMode: msg.actionMode } : {}),
          ...(msg.episodeSteps ? { episodeSteps: msg.episodeSteps } : {}),
          ...(cameras.length > 0 ? { images: { cameras, size: opened!.size } } : {}),
        },
      });
    } catch (err) {
      await opened?.model.close?.();
      throw err;
    }
    const service = opened ? new RewardService(opened.model, { maxBatch: 64, maxWaitMs: 1 }) : undefined;
    const stride = msg.queryStride ?? 1;
    const shaper = new StepRewards({
      numEnvs: msg.numEnvs,
      autoreset: venv.metadata.autoreset_mode,
      shaping,
      service,
      instruction: task.instruction,
      cameras,
      imageSize: opened?.size ?? 0,
      stride,
      deadlineMs: limits.rewardDeadlineMs,
    });
    const space = venv.singleActionSpace;
    const description: Omit<VecOpened, 'type' | 'req' | 'env'> = {
      task: msg.task,
      instruction: task.instruction,
      numEnvs: venv.numEnvs,
      obsDim: venv.obsDim,
      actDim: venv.actDim,
      obsNames: [...venv.obsNames],
      actionLow: space.lowAt(0),
      actionHigh: space.highAt(0),
      episodeSteps: venv.episodeSteps,
      autoreset: venv.metadata.autoreset_mode,
      reward: choice.name,
      shaping: shaper.shapes ? choice.mode : 'sparse',
      queryStride: stride,
      ...(opened ? { rewardModel: opened.model.id } : {}),
      ...(shaper.shapes ? { gamma: shaping.gamma } : {}),
    };
    return new EnvBatch(id, venv, choice, opened, service, shaper, description);
  }

  /** Whether a call is being served (a second one is refused, not queued). */
  get inFlight(): boolean {
    return this.busy;
  }

  /** Runs one call with the batch marked busy; REQUEST_IN_FLIGHT if one is already running. */
  async exclusive<T>(call: () => Promise<T>): Promise<T> {
    if (this.busy) {
      throw new ProtocolError(
        'REQUEST_IN_FLIGHT',
        `env ${this.id} is still answering the previous call; send the next one after its reply`,
      );
    }
    this.busy = true;
    try {
      return await call();
    } finally {
      this.busy = false;
    }
  }

  async reset(msg: VecReset): Promise<Omit<VecResetResult, 'req'>> {
    const n = this.venv.numEnvs;
    if (msg.seeds && msg.seeds.length !== n) {
      throw new ProtocolError(
        'OUT_OF_RANGE',
        `a seed list needs ${n} entries, got ${msg.seeds.length}`,
        'seeds',
      );
    }
    if (msg.resetMask && msg.resetMask.length !== n) {
      throw new ProtocolError(
        'OUT_OF_RANGE',
        `resetMask needs ${n} entries, got ${msg.resetMask.length}`,
        'resetMask',
      );
    }
    const t0 = performance.now();
    const seed = msg.seeds ?? msg.seed;
    const r = await this.venv.reset({
      ...(seed !== undefined ? { seed } : {}),
      ...(msg.resetMask ? { options: { reset_mask: msg.resetMask } } : {}),
    });
    const simMs = performance.now() - t0;
    const { phi, waitMs } = await this.shaper.reset(
      { ...(r.images ? { images: r.images } : {}), progress: r.info.progress },
      msg.resetMask,
    );
    return {
      type: 'vec_reset_result',
      env: this.id,
      obs: toTensor(r.obs, [n, this.venv.obsDim]),
      info: this.info(r.info, phi),
      timing: { simMs, rewardMs: waitMs },
    };
  }

  async step(msg: VecStep): Promise<Omit<VecStepResult, 'req'>> {
    const { numEnvs: n, actDim: a } = this.venv;
    const shape = msg.actions.shape;
    if (shape[0] !== n || shape[1] !== a) {
      throw new ProtocolError(
        'BAD_TENSOR',
        `actions must be [numEnvs, actDim] = [${n}, ${a}], got [${shape.join(', ')}]`,
        'actions.shape',
      );
    }
    const t0 = performance.now();
    const res = await this.venv.step(fromTensor(msg.actions));
    const simMs = performance.now() - t0;
    const sparse = res.rewards;
    let taskRewards: Float64Array = sparse;
    if (this.choice.dense) {
      taskRewards = new Float64Array(n);
      for (let i = 0; i < n; i++) taskRewards[i] = sparse[i]! + res.info.dense_reward[i]!;
    }
    const shaped = await this.shaper.step({
      rewards: taskRewards,
      terminated: res.terminated,
      truncated: res.truncated,
      episodeStep: res.info.episode_step,
      ...(res.images ? { images: res.images } : {}),
      progress: res.info.progress,
    });
    const info = this.info(res.info, shaped.phi);
    info.sparse_reward = toTensor(sparse);
    info.dense_reward = toTensor(res.info.dense_reward);
    if (res.info.final_obs && info.final_info) info.final_info.phi = toTensor(shaped.finalPhi);
    return {
      type: 'vec_step_result',
      env: this.id,
      obs: toTensor(res.obs, [n, this.venv.obsDim]),
      rewards: toTensor(shaped.rewards),
      terminated: toTensor(res.terminated),
      truncated: toTensor(res.truncated),
      info,
      timing: { simMs, rewardMs: shaped.waitMs },
    };
  }

  private info(v: VectorInfo, phi: Float64Array): VecInfo {
    const info: VecInfo = {
      is_success: toTensor(v.is_success),
      episode_step: toTensor(v.episode_step),
      phi: toTensor(phi),
      progress: toTensor(v.progress),
    };
    // Like Gymnasium, the final_* keys appear only on steps where some episode ended.
    if (v.final_obs && v._final_obs && v.final_info && v._final_info && v._final_obs.includes(1)) {
      info.final_obs = toTensor(v.final_obs, [this.venv.numEnvs, this.venv.obsDim]);
      info._final_obs = toTensor(v._final_obs);
      info.final_info = {
        is_success: toTensor(v.final_info.is_success),
        episode_step: toTensor(v.final_info.episode_step),
        phi: toTensor(new Float64Array(this.venv.numEnvs).fill(NaN)),
      };
      info._final_info = toTensor(v._final_info);
    }
    return info;
  }

  /** Stops the workers and the reward model. Safe to call twice and while a call runs (it then fails). */
  async close(): Promise<void> {
    await this.venv.close();
    await this.service?.close();
    if (!this.service) await this.opened?.model.close?.();
  }
}

async function openModel(source: string): Promise<OpenedModel> {
  try {
    return await openProgressModel(source);
  } catch (err) {
    if (err instanceof ProgressBridgeError && !(err instanceof InvalidArgument)) throw err;
    throw new ProtocolError('INVALID_VALUE', (err as Error).message, 'model');
  }
}
