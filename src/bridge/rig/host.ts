/**
 * The server side of the `rig` role: per connected rig, one queue that handles its messages strictly in order
 * (validate -> decide the action -> store the step durably -> answer), the episode's potentials and shaping, and
 * its episode store. The bridge server owns the sockets and calls in through `RigHost`.
 *
 * Why one queue per rig: a step is acknowledged (its `rig_action` sent) only after it is on disk, and the store
 * must see steps in the order the rig sent them; the queue gives both without locks. It is bounded in messages
 * and bytes, so a peer that floods gets OVERLOADED instead of growing the server's memory.
 *
 * Rewards never hold up the control loop: each observation's frames are submitted to the reward service and the
 * action is answered at once. Answers settle later, in order: the reward line of state k is written once Phi(s_k)
 * is known (or given up on) and it is known whether s_k ended the episode. `rig_action.display` carries the newest
 * settled transition.
 */
import {
  ProtocolError,
  toTensor,
  type Message,
  type RigEpisodeEnd,
  type RigMark,
  type RigObs,
  type RigReset,
  type RigSpec,
  type Status,
} from '../../protocol/index.ts';
import { fromTensor } from '../../protocol/tensor.ts';
import type { ProgressImage, ProgressResponse } from '../../reward/model.ts';
import type { RewardService } from '../../reward/service.ts';
import {
  checkShapingConfig,
  EpisodePotentials,
  shapedReward,
  type ShapingConfig,
} from '../../reward/shaping.ts';
import { DEFAULT_SUCCESS_RULE, SuccessDetector, type SuccessRule } from '../../reward/success.ts';
import {
  EPISODE_FORMAT,
  EpisodeWriter,
  nextEpisodeNumber,
  type EpisodeMeta,
  type IncomingFrame,
  type StepRecord,
} from '../../rig/episode-store.ts';
import { checkFrame, decodeFrame, DECODABLE_ENCODINGS } from '../../rig/frames.ts';
import { clipAction, zeroAction, type RigPolicy } from '../../rig/policy.ts';

/** A stored, acknowledged step, as the observer sees it. */
export interface RigStepEvent {
  rig: string;
  episode: number;
  step: number;
  /** The state's proprioception as stored. */
  proprio: Float32Array;
  /** What the server answered for this state (clipped into the bounds). */
  action: Float32Array;
  /** Policy name stored with the step (`zero (policy failed: ...)` when the policy threw). */
  policy: string;
  /** This state's action was decided past the deadline (the rig will hold instead of applying it). */
  late: boolean;
  /** The rig did not apply the previous state's action. */
  held: boolean;
  /** A human executed the previous transition's action. */
  intervention: boolean;
}

/** A settled state: its Phi and the transition into it, as written to the reward line. */
export interface RigRewardEvent {
  rig: string;
  episode: number;
  step: number;
  phi: number;
  /** The model answered for this state (otherwise Phi was held from the previous state). */
  answered: boolean;
  /** Sparse and shaped reward of the transition into this state (0 for state 0). */
  reward: number;
  shaped: number;
  terminated: boolean;
  truncated: boolean;
}

/** Told, in order per rig, about every stored step, every settled state and every episode end. */
export interface RigObserver {
  onStep?(e: RigStepEvent): void;
  onReward?(e: RigRewardEvent): void;
  onEpisodeEnd?(rig: string, end: RigEpisodeEnd): void;
}

/** What the host needs from the server for one connection. */
export interface RigLink {
  readonly id: number;
  send(msg: Message): void;
  status(level: Status['level'], err: ProtocolError, ref?: string): void;
  close(code: number, reason: string): void;
}

export interface RigRewardSource {
  service: RewardService;
  /** Model id for rigs and the store. */
  id: string;
  /** Cameras the model reads (empty for the oracle, which reads `rig_obs.privileged`). */
  cameras: readonly string[];
  /** Called when the server stops (closes the service and its model). */
  close?(): Promise<void>;
}

export interface RigHostOptions {
  /** Root of the episode store (episodes under <storeDir>/<rig name>/). */
  storeDir: string;
  /** Initial policy; undefined answers with zero actions until `setPolicy`. */
  policy?: RigPolicy;
  /** Progress model behind a reward service; undefined: no Phi (rewards are the sparse ones). */
  reward?: RigRewardSource;
  /** The learner's discount used for shaping (default 0.99). */
  gamma?: number;
  /** Shaping scale k (default 1). */
  scale?: number;
  /** Fixed action deadline, ms after the observation arrived. Default: one control period of the rig. */
  deadlineMs?: number;
  /** Messages waiting per rig before OVERLOADED (default 8). */
  maxPending?: number;
  /** Bytes of frames waiting per rig before OVERLOADED (default 64 MiB). */
  maxPendingBytes?: number;
  /** At episode end, how long to wait for outstanding reward answers before holding Phi (default 3000 ms). */
  rewardWaitMs?: number;
  /** Success from the model, for rigs without a sensor. */
  successRule?: SuccessRule;
  /** Told about steps, rewards and episode ends (a learner training on rigs). */
  observer?: RigObserver;
  /**
   * Longest wait for the policy's action (default 5000 ms). A policy that hangs (a remote one, a stuck
   * process) would otherwise stall the rig's queue for good: past this the rig gets the zero action, flagged late.
   */
  policyTimeoutMs?: number;
  log?: (line: string) => void;
}

/** Close code for a connection replaced by a newer one of the same rig name. */
export const CLOSE_RIG_SUPERSEDED = 4409;

export interface RigStats {
  rig: string;
  session: number;
  episode: number;
  /** Steps acknowledged (stored, then answered) on this connection. */
  acked: number;
  /** Their sequence numbers, in order. */
  ackedSeqs: number[];
  late: number;
  pending: number;
}

interface Answer {
  phi: number;
  status: ProgressResponse['status'] | 'none';
  confidence?: number;
}

/** One episode in progress. */
class EpisodeRun {
  writer: EpisodeWriter | undefined;
  readonly potentials = new EpisodePotentials();
  readonly answers: (Answer | undefined)[] = [];
  readonly pendingAnswers = new Set<Promise<void>>();
  readonly detector: SuccessDetector;
  detectorNext = 0;
  /** States stored. */
  states = 0;
  /** Next state whose reward line is due. */
  settled = 0;
  /** Model said success; the next observation ends the episode. */
  successPending = false;
  /** Decided end (set before the settle of the last state). */
  end: { terminated: boolean; truncated: boolean; success: boolean; reason: string } | undefined;
  ret = 0;
  shapedRet = 0;
  display: { step: number; phi: number; reward: number; shaped: number } | undefined;
  startFrames: Record<string, ProgressImage> | undefined;
  ended: RigEpisodeEnd | undefined;

  constructor(
    readonly episode: number,
    rule: SuccessRule,
  ) {
    this.detector = new SuccessDetector(rule);
  }
}

export class RigConnection {
  private queue: Promise<void> = Promise.resolve();
  private pending = 0;
  private pendingBytes = 0;
  private lastSeq = -1;
  private run!: EpisodeRun;
  private closed = false;
  private warnedReward = false;
  readonly acked: number[] = [];
  late = 0;
  /** Resolves when the connection's last task (the close) has run. */
  done: Promise<void> | undefined;

  constructor(
    private readonly host: RigHost,
    readonly link: RigLink,
    readonly spec: RigSpec,
  ) {}

  get episode(): number {
    return this.run.episode;
  }

  get pendingCount(): number {
    return this.pending;
  }

  /** Queues a message from the rig; `receivedAt` is performance.now() at arrival (lateness is measured from it). */
  submit(msg: RigObs | RigReset | RigMark, receivedAt: number): void {
    const bytes = msg.type === 'rig_obs' ? frameBytes(msg) : 0;
    if (this.pending >= this.host.maxPending || this.pendingBytes + bytes > this.host.maxPendingBytes) {
      this.link.status(
        'error',
        new ProtocolError(
          'OVERLOADED',
          `${this.pending} messages (${this.pendingBytes} bytes) already waiting; send one observation at a time and wait for its rig_action`,
        ),
        msg.type,
      );
      return;
    }
    this.pending++;
    this.pendingBytes += bytes;
    this.enqueue(async () => {
      try {
        if (msg.type === 'rig_obs') await this.onObs(msg, receivedAt);
        else if (msg.type === 'rig_reset') await this.onReset(msg);
        else await this.onMark(msg);
      } catch (err) {
        if (err instanceof ProtocolError) this.link.status('error', err, msg.type);
        else {
          this.host.log(`rig ${this.spec.name}: ${(err as Error).stack ?? String(err)}`);
          this.link.status(
            'error',
            new ProtocolError(
              'INVALID_VALUE',
              `server could not handle ${msg.type}: ${(err as Error).message}`,
            ),
            msg.type,
          );
        }
      } finally {
        this.pending--;
        this.pendingBytes -= bytes;
      }
    });
  }

  /** Numbers the first episode and sends rig_ready: the first task of a connection, so messages wait for it. */
  ready(first: Promise<number>): void {
    this.enqueue(async () => {
      this.run = new EpisodeRun(await first, this.host.successRule);
      this.link.send({
        type: 'rig_ready',
        episode: this.run.episode,
        policy: this.host.policyName,
        reward: this.host.reward?.id ?? 'none',
        rewardCameras: [...(this.host.reward?.cameras ?? [])],
        gamma: this.host.shaping.gamma,
        deadlineMs: this.host.deadlineFor(this.spec),
        store: `${this.host.storeDir}/${this.spec.name}`,
      });
    });
  }

  /** The connection is gone (or superseded, or the server stops): truncate a running episode, keep everything. */
  detach(reason: 'disconnect' | 'superseded' | 'server_shutdown'): Promise<void> {
    if (!this.done) {
      this.done = this.enqueue(async () => {
        this.closed = true;
        if (this.run && !this.run.ended) {
          await this.finishEpisode({
            terminated: false,
            truncated: true,
            success: false,
            reason: reason === 'superseded' ? 'disconnect' : reason,
          });
        }
      });
    }
    return this.done;
  }

  stats(): RigStats {
    return {
      rig: this.spec.name,
      session: this.link.id,
      episode: this.run?.episode ?? -1,
      acked: this.acked.length,
      ackedSeqs: [...this.acked],
      late: this.late,
      pending: this.pending,
    };
  }

  private enqueue(task: () => Promise<void>): Promise<void> {
    const next = this.queue.then(task).catch((err: unknown) => {
      this.host.log(`rig ${this.spec.name}: ${(err as Error).stack ?? String(err)}`);
    });
    this.queue = next;
    return next;
  }

  // -------------------------------------------------------------------------------------------------------

  private checkObs(msg: RigObs): { frames: IncomingFrame[]; proprio: Float32Array; intervention?: number[] } {
    const run = this.run;
    if (run.ended) {
      throw new ProtocolError(
        'EPISODE_MISMATCH',
        `episode ${run.episode} has ended (${run.ended.reason}); send rig_reset to start the next one`,
        'episode',
      );
    }
    if (msg.episode !== run.episode) {
      throw new ProtocolError(
        'EPISODE_MISMATCH',
        `episode ${msg.episode}; the current one is ${run.episode}`,
        'episode',
      );
    }
    if (msg.seq <= this.lastSeq) {
      throw new ProtocolError(
        'INVALID_VALUE',
        `seq ${msg.seq} after ${this.lastSeq}; it must increase`,
        'seq',
      );
    }
    const spec = this.spec;
    const frames: IncomingFrame[] = [];
    for (const cam of spec.cameras) {
      const data = msg.frames[cam.name];
      if (!data)
        throw new ProtocolError(
          'MISSING_FIELD',
          `no frame for declared camera ${cam.name}`,
          `frames.${cam.name}`,
        );
      checkFrame(cam, data);
      frames.push({ camera: cam.name, encoding: cam.encoding, data });
    }
    for (const name of Object.keys(msg.frames)) {
      if (!spec.cameras.some((c) => c.name === name)) {
        throw new ProtocolError(
          'INVALID_VALUE',
          `camera ${name} was not declared (declared: ${spec.cameras.map((c) => c.name).join(', ') || 'none'})`,
          `frames.${name}`,
        );
      }
    }
    const proprioRaw = fromTensor(msg.proprio);
    if (proprioRaw.length !== spec.proprio.names.length) {
      throw new ProtocolError(
        'INVALID_VALUE',
        `${proprioRaw.length} values; the rig declared ${spec.proprio.names.length} proprio names`,
        'proprio',
      );
    }
    const proprio = Float32Array.from(proprioRaw);
    let intervention: number[] | undefined;
    if (msg.intervention) {
      const a = fromTensor(msg.intervention);
      if (a.length !== spec.action.dim) {
        throw new ProtocolError(
          'INVALID_VALUE',
          `${a.length} values; action.dim is ${spec.action.dim}`,
          'intervention',
        );
      }
      intervention = Array.from(a);
    }
    return intervention ? { frames, proprio, intervention } : { frames, proprio };
  }

  private async onObs(msg: RigObs, receivedAt: number): Promise<void> {
    const serverTime = Date.now() - (performance.now() - receivedAt);
    const { frames, proprio, intervention } = this.checkObs(msg);
    const run = this.run;
    const spec = this.spec;
    const policy = this.host.policy;
    let action: Float32Array;
    let policyName = this.host.policyName;
    if (policy && this.host.policyFits(spec)) {
      try {
        const ctx = { rig: spec.name, episode: run.episode, step: run.states };
        const decided = await withTimeout(
          Promise.resolve(policy.act(proprio, ctx)),
          this.host.policyTimeoutMs,
          `no answer within ${this.host.policyTimeoutMs} ms`,
        );
        action = clipAction(Float32Array.from(decided), spec.action.low, spec.action.high);
      } catch (err) {
        action = zeroAction(spec.action.low, spec.action.high);
        policyName = `zero (policy failed: ${(err as Error).message.slice(0, 200)})`;
      }
    } else {
      action = zeroAction(spec.action.low, spec.action.high);
      if (policy) policyName = 'zero';
    }
    const decideMs = performance.now() - receivedAt;
    const deadline = this.host.deadlineFor(spec);
    const late = decideMs > deadline;
    const step = run.states;
    const terminalBySensor = spec.successSensor === true && msg.success === true;
    const terminalByModel = spec.successSensor !== true && run.successPending;
    const record: Omit<StepRecord, 'frames'> = {
      kind: 'step',
      step,
      seq: msg.seq,
      rigTime: msg.time,
      serverTime,
      proprio: Array.from(proprio),
      action: Array.from(action),
      policy: policyName,
      late,
      decideMs,
    };
    if (msg.success !== undefined) record.success = msg.success;
    if (intervention) record.intervention = intervention;
    if (msg.held) record.held = true;
    if (msg.privileged !== undefined) record.privileged = msg.privileged;
    try {
      if (!run.writer) run.writer = await EpisodeWriter.create(this.host.storeDir, this.meta(run));
      await run.writer.appendStep(record, frames);
    } catch (err) {
      throw new ProtocolError('STORE_FAILED', `step not stored, not acknowledged: ${(err as Error).message}`);
    }
    this.lastSeq = msg.seq;
    this.host.observer?.onStep?.({
      rig: spec.name,
      episode: run.episode,
      step,
      proprio,
      action,
      policy: policyName,
      late,
      held: msg.held === true,
      intervention: intervention !== undefined,
    });
    run.states++;
    run.potentials.push();
    run.answers.push(undefined);
    const terminal = terminalBySensor || terminalByModel;
    if (terminal) {
      // The end waits for this state's answer, so it must be asked for first.
      this.score(run, step, msg, frames);
      await this.finishEpisode({
        terminated: true,
        truncated: false,
        success: true,
        reason: terminalBySensor ? 'success_sensor' : 'success_model',
      });
    } else {
      this.settle(run);
    }
    if (late) this.late++;
    this.acked.push(msg.seq);
    this.link.send({
      type: 'rig_action',
      seq: msg.seq,
      episode: run.episode,
      step,
      action: toTensor(action),
      late,
      decideMs,
      ...(run.display ? { display: { ...run.display } } : {}),
      ...(run.ended ? { ended: run.ended } : {}),
    });
    // Decoding frames for the model costs milliseconds: after the action is on its way, not before.
    if (!terminal) this.score(run, step, msg, frames);
  }

  private async onReset(msg: RigReset): Promise<void> {
    let ended: RigEpisodeEnd | undefined;
    if (!this.run.ended) {
      if (this.run.states > 0) {
        ended = await this.finishEpisode({
          terminated: false,
          truncated: true,
          success: false,
          reason: msg.reason ?? 'reset',
        });
      }
    } else {
      ended = this.run.ended;
    }
    // An episode nobody stepped in has no directory; its number is used by the next one.
    const next = this.run.states > 0 ? this.run.episode + 1 : this.run.episode;
    this.run = new EpisodeRun(next, this.host.successRule);
    this.link.send({ type: 'rig_episode', episode: next, running: true, ...(ended ? { ended } : {}) });
  }

  private async onMark(msg: RigMark): Promise<void> {
    const run = this.run;
    if (msg.episode !== run.episode || run.ended) {
      throw new ProtocolError(
        'EPISODE_MISMATCH',
        run.ended
          ? `episode ${run.episode} has already ended (${run.ended.reason})`
          : `mark for episode ${msg.episode}; the current one is ${run.episode}`,
        'episode',
      );
    }
    if (run.states === 0) {
      throw new ProtocolError(
        'EPISODE_MISMATCH',
        `episode ${run.episode} has no observation to mark yet`,
        'episode',
      );
    }
    await run.writer!.append({
      kind: 'mark',
      step: run.states - 1,
      outcome: msg.outcome,
      serverTime: Date.now(),
    });
    const ended = await this.finishEpisode(
      msg.outcome === 'success'
        ? { terminated: true, truncated: false, success: true, reason: 'mark_success' }
        : { terminated: false, truncated: true, success: false, reason: 'mark_failure' },
    );
    this.link.send({ type: 'rig_episode', episode: run.episode, running: false, ended });
  }

  private meta(run: EpisodeRun): EpisodeMeta {
    return {
      format: EPISODE_FORMAT,
      rig: this.spec.name,
      episode: run.episode,
      startedAt: new Date().toISOString(),
      spec: this.spec,
      policy: this.host.policyName,
      reward: this.host.reward?.id ?? 'none',
      gamma: this.host.shaping.gamma,
      deadlineMs: this.host.deadlineFor(this.spec),
    };
  }

  // -------------------------------------------------------------------------------------------------------
  // Rewards

  /** Submits state `step` to the reward model; its answer lands in `run.answers` and settles what it can. */
  private score(run: EpisodeRun, step: number, msg: RigObs, frames: IncomingFrame[]): void {
    const reward = this.host.reward;
    if (!reward) {
      run.answers[step] = { phi: NaN, status: 'none' };
      return;
    }
    const views: Record<string, ProgressImage> = {};
    try {
      for (const name of reward.cameras) {
        const cam = this.spec.cameras.find((c) => c.name === name)!;
        views[name] = decodeFrame(cam, frames.find((f) => f.camera === name)!.data);
      }
    } catch (err) {
      run.answers[step] = { phi: NaN, status: 'error' };
      this.warnReward(`frame of state ${step} could not be decoded: ${(err as Error).message}`);
      return;
    }
    if (step === 0) run.startFrames = views;
    const p = reward.service
      .submit({
        instruction: this.spec.instruction,
        views,
        ...(run.startFrames ? { anchors: { start: run.startFrames } } : {}),
        envId: this.link.id,
        episodeId: run.episode,
        step,
        ...(msg.privileged !== undefined ? { privileged: { progress: msg.privileged } } : {}),
      })
      .then((a) => {
        if (a.status !== 'ok') this.warnReward(`state ${step}: ${a.status}${a.error ? ` (${a.error})` : ''}`);
        run.answers[step] = {
          phi: a.progress,
          status: a.status,
          ...(a.confidence !== undefined ? { confidence: a.confidence } : {}),
        };
        run.potentials.record(step, a.progress);
        this.feedDetector(run);
        if (!run.end) this.settle(run);
      });
    run.pendingAnswers.add(p);
    void p.finally(() => run.pendingAnswers.delete(p));
  }

  private feedDetector(run: EpisodeRun): void {
    while (run.detectorNext < run.states && run.answers[run.detectorNext]) {
      const a = run.answers[run.detectorNext]!;
      run.detectorNext++;
      const fired = run.detector.update({
        status: a.status === 'none' ? 'error' : a.status,
        progress: a.phi,
        ...(a.confidence !== undefined ? { confidence: a.confidence } : {}),
      });
      if (fired && this.spec.successSensor !== true && !run.end) run.successPending = true;
    }
  }

  /** Writes reward lines for every state whose Phi is known and whose end-ness is decided, in order. */
  private settle(run: EpisodeRun): void {
    const writer = run.writer;
    if (!writer) return;
    const cfg = this.host.shaping;
    while (run.settled < run.states && run.answers[run.settled]) {
      const k = run.settled;
      const last = k === run.states - 1;
      // The last state's transition waits until the next observation or the end says whether it is terminal.
      if (last && !run.end) break;
      const phi = run.potentials.resolve(k + 1);
      const a = run.answers[k]!;
      const terminated = last && run.end!.terminated;
      const truncated = last && run.end!.truncated;
      const reward = terminated && run.end!.success ? 1 : 0;
      const shaped = k === 0 ? 0 : shapedReward(cfg, reward, phi[k - 1]!, phi[k]!, terminated, truncated);
      run.ret += reward;
      run.shapedRet += shaped;
      run.display = { step: k, phi: phi[k]!, reward, shaped };
      this.host.observer?.onReward?.({
        rig: this.spec.name,
        episode: run.episode,
        step: k,
        phi: phi[k]!,
        answered: a.status === 'ok' && Number.isFinite(a.phi),
        reward,
        shaped,
        terminated,
        truncated,
      });
      void writer
        .append({
          kind: 'reward',
          step: k,
          phi: phi[k]!,
          answer: Number.isFinite(a.phi) ? a.phi : null,
          status: a.status,
          reward,
          shaped,
          terminated,
          truncated,
        })
        .catch((err: unknown) =>
          this.host.log(`rig ${this.spec.name}: reward line not written: ${String(err)}`),
        );
      run.settled++;
    }
  }

  /** Ends the episode: waits (bounded) for outstanding answers, settles every state, writes the end line. */
  private async finishEpisode(end: NonNullable<EpisodeRun['end']>): Promise<RigEpisodeEnd> {
    const run = this.run;
    run.end = end;
    if (run.pendingAnswers.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all([...run.pendingAnswers]),
        new Promise<void>((r) => (timer = setTimeout(r, this.host.rewardWaitMs))),
      ]);
      clearTimeout(timer);
    }
    // Past the wait, a missing answer holds the previous state's Phi (the shaping rules); never 0.
    for (let k = 0; k < run.states; k++) run.answers[k] ??= { phi: NaN, status: 'timeout' };
    this.settle(run);
    const summary: RigEpisodeEnd = {
      episode: run.episode,
      steps: run.states,
      terminated: end.terminated,
      truncated: end.truncated,
      success: end.success,
      reason: end.reason,
      return: run.ret,
      shapedReturn: run.shapedRet,
    };
    run.ended = summary;
    if (run.states > 0) this.host.observer?.onEpisodeEnd?.(this.spec.name, summary);
    if (run.writer) {
      await run.writer.end({ kind: 'end', ...summary, serverTime: Date.now() });
      this.host.log(
        `rig ${this.spec.name} episode ${run.episode}: ${run.states} steps, ${end.reason}, return ${run.ret}, shaped ${run.shapedRet.toFixed(3)}`,
      );
    }
    return summary;
  }

  private warnReward(text: string): void {
    if (this.warnedReward || this.closed) return;
    this.warnedReward = true;
    this.link.status(
      'warning',
      new ProtocolError(
        'INVALID_VALUE',
        `reward model: ${text} (missing answers hold Phi; further warnings muted)`,
      ),
    );
  }
}

/** All rigs of one server. */
export class RigHost {
  readonly storeDir: string;
  readonly reward: RigRewardSource | undefined;
  readonly shaping: Required<ShapingConfig>;
  readonly maxPending: number;
  readonly maxPendingBytes: number;
  readonly rewardWaitMs: number;
  readonly successRule: SuccessRule;
  readonly observer: RigObserver | undefined;
  readonly policyTimeoutMs: number;
  readonly log: (line: string) => void;
  private readonly fixedDeadlineMs: number | undefined;
  private current: RigPolicy | undefined;
  private readonly rigs = new Map<string, RigConnection>();
  /** Connections of a rig name still closing their episode: a reconnect numbers its episode after they finish. */
  private readonly closing = new Map<string, Promise<void>>();

  constructor(options: RigHostOptions) {
    this.storeDir = options.storeDir;
    this.reward = options.reward;
    this.current = options.policy;
    this.shaping = checkShapingConfig({
      mode: 'potential',
      gamma: options.gamma ?? 0.99,
      scale: options.scale ?? 1,
    });
    this.fixedDeadlineMs = options.deadlineMs;
    this.maxPending = options.maxPending ?? 8;
    this.maxPendingBytes = options.maxPendingBytes ?? 64 * 1024 * 1024;
    this.rewardWaitMs = options.rewardWaitMs ?? 3000;
    this.successRule = options.successRule ?? DEFAULT_SUCCESS_RULE;
    this.observer = options.observer;
    this.policyTimeoutMs = options.policyTimeoutMs ?? 5000;
    this.log = options.log ?? (() => {});
  }

  get policy(): RigPolicy | undefined {
    return this.current;
  }

  get policyName(): string {
    return this.current?.name ?? 'zero';
  }

  /**
   * Hands rigs a new policy (a learner's, as it improves) or none (zero actions). Takes effect from each rig's
   * next observation; a rig whose spec does not fit it gets zero actions and a warning.
   */
  setPolicy(policy: RigPolicy | undefined): void {
    this.current = policy;
    for (const rig of this.rigs.values()) {
      if (policy && !this.policyFits(rig.spec)) {
        rig.link.status(
          'warning',
          new ProtocolError(
            'SPEC_MISMATCH',
            `policy ${policy.name} takes ${policy.obsDim} proprio values and gives ${policy.actDim} actions; this rig gets zero actions`,
          ),
        );
      }
    }
  }

  policyFits(spec: RigSpec): boolean {
    const p = this.current;
    if (!p) return true;
    return (
      (p.obsDim === undefined || p.obsDim === spec.proprio.names.length) &&
      (p.actDim === undefined || p.actDim === spec.action.dim)
    );
  }

  deadlineFor(spec: RigSpec): number {
    return this.fixedDeadlineMs ?? 1000 / spec.action.rateHz;
  }

  /** Throws SPEC_MISMATCH (path in `hello.rig`) unless the server can serve this rig. Called at hello. */
  check(spec: RigSpec): void {
    const p = this.current;
    p?.fit?.(spec);
    if (p?.obsDim !== undefined && p.obsDim !== spec.proprio.names.length) {
      throw new ProtocolError(
        'SPEC_MISMATCH',
        `${spec.proprio.names.length} proprio names; the policy ${p.name} takes obs_dim ${p.obsDim}`,
        'rig.proprio.names',
      );
    }
    if (p?.actDim !== undefined && p.actDim !== spec.action.dim) {
      throw new ProtocolError(
        'SPEC_MISMATCH',
        `action.dim ${spec.action.dim}; the policy ${p.name} outputs act_dim ${p.actDim}`,
        'rig.action.dim',
      );
    }
    for (const name of this.reward?.cameras ?? []) {
      const i = spec.cameras.findIndex((c) => c.name === name);
      if (i < 0) {
        throw new ProtocolError(
          'SPEC_MISMATCH',
          `the reward model ${this.reward!.id} reads cameras ${this.reward!.cameras.join(', ')}; this rig has no camera "${name}"`,
          'rig.cameras',
        );
      }
      const enc = spec.cameras[i]!.encoding;
      if (!DECODABLE_ENCODINGS.includes(enc)) {
        throw new ProtocolError(
          'SPEC_MISMATCH',
          `camera ${name} is ${enc}, which the reward model reads and this server cannot decode; send ${DECODABLE_ENCODINGS.join(', ')} for ${this.reward!.cameras.join(', ')}`,
          `rig.cameras[${i}].encoding`,
        );
      }
    }
  }

  /**
   * Attaches a greeted rig and queues its rig_ready. A connection of the same name is superseded (its episode
   * truncated); the new one starts a new episode, numbered after everything on disk.
   */
  attach(link: RigLink, spec: RigSpec): RigConnection {
    const previous = this.rigs.get(spec.name);
    if (previous) {
      previous.link.close(CLOSE_RIG_SUPERSEDED, 'superseded by a new connection of the same rig');
      this.detach(previous, 'superseded');
    }
    const rig = new RigConnection(this, link, spec);
    this.rigs.set(spec.name, rig);
    const closing = this.closing.get(spec.name);
    rig.ready((closing ?? Promise.resolve()).then(() => nextEpisodeNumber(this.storeDir, spec.name)));
    return rig;
  }

  /** The socket closed (or was superseded): the running episode is truncated and kept. */
  detach(rig: RigConnection, reason: 'disconnect' | 'superseded' = 'disconnect'): Promise<void> {
    if (this.rigs.get(rig.spec.name) === rig) this.rigs.delete(rig.spec.name);
    const done = rig.detach(reason);
    const name = rig.spec.name;
    const prior = this.closing.get(name) ?? Promise.resolve();
    const all = Promise.all([prior, done]).then(() => {
      if (this.closing.get(name) === all) this.closing.delete(name);
    });
    this.closing.set(name, all);
    return done;
  }

  stats(): RigStats[] {
    return [...this.rigs.values()].map((r) => r.stats());
  }

  rig(name: string): RigConnection | undefined {
    return this.rigs.get(name);
  }

  /** Truncates every running episode (reason server_shutdown) and closes the policy. */
  async close(): Promise<void> {
    await Promise.all([...this.rigs.values()].map((r) => r.detach('server_shutdown')));
    this.rigs.clear();
    await Promise.all([...this.closing.values()]);
    await this.current?.close?.();
    await this.reward?.close?.();
  }
}

/** `p`, or a rejection with `message` after `ms` (the late result is dropped). */
function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

function frameBytes(msg: RigObs): number {
  let n = msg.proprio.data.byteLength;
  for (const k of Object.keys(msg.frames)) n += msg.frames[k]!.byteLength;
  return n;
}
