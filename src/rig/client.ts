/**
 * A rig's side of the protocol, in TypeScript: connect with a spec, then `step` (observation in, action out),
 * `reset` and `mark`. `pbridge rig-sim` is built on it; a real rig in Node would be too. Statuses the server sends
 * in answer to a message reject that call with the status's code.
 */
import { BridgeClient, ConnectRefused } from '../bridge/client.ts';
import {
  fromTensor,
  ProtocolError,
  toTensor,
  type MessageOf,
  type RigAction,
  type RigEpisode,
  type RigReady,
  type RigSpec,
} from '../protocol/index.ts';

export interface RigObservation {
  frames: Record<string, Uint8Array>;
  proprio: Float32Array | Float64Array;
  time: number;
  success?: boolean;
  intervention?: Float32Array;
  held?: boolean;
  privileged?: number;
}

/** A `status` error the server answered one of this rig's messages with. */
export class RigRequestFailed extends Error {
  constructor(readonly status: MessageOf<'status'>) {
    super(`${status.code}: ${status.message}${status.path ? ` (${status.path})` : ''}`);
  }
  get code(): string {
    return this.status.code;
  }
}

export class RigClient {
  private seq = 0;
  episode: number;
  /** Warnings and other statuses that answered nothing this client waited for, oldest first (at most 100). */
  readonly notices: MessageOf<'status'>[] = [];

  private constructor(
    readonly client: BridgeClient,
    readonly ready: RigReady,
    readonly spec: RigSpec,
  ) {
    this.episode = ready.episode;
  }

  /** Connects as a rig and waits for `rig_ready`; rejects with ConnectRefused when the server refuses the spec. */
  static async connect(
    url: string,
    token: string | undefined,
    spec: RigSpec,
    options: { client?: string; timeoutMs?: number } = {},
  ): Promise<RigClient> {
    const client = await BridgeClient.open(url, {
      role: 'rig',
      client: options.client ?? `rig ${spec.name}`,
      rig: spec,
      ...(token !== undefined ? { token } : {}),
    });
    const first = await client.next(undefined, options.timeoutMs ?? 10_000).catch((err: unknown) => {
      throw err instanceof ConnectRefused ? err : new ConnectRefused((err as Error).message);
    });
    if (first.type !== 'welcome') {
      client.ws.terminate();
      if (first.type === 'status')
        throw new ConnectRefused(`${first.code}: ${first.message}`, undefined, first);
      throw new ConnectRefused(`expected welcome, got ${first.type}`);
    }
    client.welcome = first;
    const ready = await client.next('rig_ready', options.timeoutMs ?? 10_000);
    return new RigClient(client, ready, spec);
  }

  /** Sends one observation and waits for the action that answers it. */
  async step(obs: RigObservation, timeoutMs = 10_000): Promise<RigAction> {
    const seq = this.seq++;
    const msg: MessageOf<'rig_obs'> = {
      type: 'rig_obs',
      seq,
      episode: this.episode,
      time: obs.time,
      frames: obs.frames,
      proprio: toTensor(obs.proprio),
    };
    if (obs.success !== undefined) msg.success = obs.success;
    if (obs.intervention) msg.intervention = toTensor(obs.intervention);
    if (obs.held) msg.held = true;
    if (obs.privileged !== undefined) msg.privileged = obs.privileged;
    this.client.send(msg);
    const reply = await this.answer(['rig_action'], 'rig_obs', timeoutMs);
    const action = reply as RigAction;
    if (action.seq !== seq)
      throw new ProtocolError('INVALID_VALUE', `rig_action for seq ${action.seq}, sent ${seq}`);
    return action;
  }

  /** Ends the current episode (truncated if still running) and starts the next. */
  async reset(reason?: string, timeoutMs = 15_000): Promise<RigEpisode> {
    this.client.send({ type: 'rig_reset', ...(reason ? { reason } : {}) });
    const ep = (await this.answer(['rig_episode'], 'rig_reset', timeoutMs)) as RigEpisode;
    this.episode = ep.episode;
    return ep;
  }

  /** A human's verdict on the current episode; it ends the episode (send `reset` next). */
  async mark(outcome: 'success' | 'failure', timeoutMs = 15_000): Promise<RigEpisode> {
    this.client.send({ type: 'rig_mark', outcome, episode: this.episode });
    return (await this.answer(['rig_episode'], 'rig_mark', timeoutMs)) as RigEpisode;
  }

  close(): void {
    this.client.close();
  }

  /** The reply to a message of type `ref`: one of `types`, or an error status that answers it (rejected). */
  private async answer(
    types: readonly string[],
    ref: string,
    timeoutMs: number,
  ): Promise<MessageOf<'rig_action'> | MessageOf<'rig_episode'>> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const m = await this.client.next(undefined, Math.max(1, deadline - performance.now()));
      if (types.includes(m.type)) return m as MessageOf<'rig_action'> | MessageOf<'rig_episode'>;
      if (m.type === 'status' && m.level === 'error' && (m.ref === ref || m.ref === undefined)) {
        throw new RigRequestFailed(m);
      }
      // Warnings are not answers; keep them for the caller to show.
      if (m.type === 'status') {
        this.notices.push(m);
        if (this.notices.length > 100) this.notices.shift();
      }
    }
  }
}

/** Float32Array of an action tensor. */
export function actionOf(a: RigAction): Float32Array {
  return Float32Array.from(fromTensor(a.action));
}
