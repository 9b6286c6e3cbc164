/**
 * A Node client of the bridge: connect with a role, read validated messages from a queue, send messages. Used
 * by out-of-process publishers (`RemotePublisher`), the tests and the benchmark.
 */
import { WebSocket } from 'ws';
import {
  decodeMessage,
  encodeMessage,
  ProtocolError,
  SUBPROTOCOL,
  toTensor,
  type Message,
  type MessageOf,
  type MessageType,
  type RigSpec,
  type Role,
  type Welcome,
} from '../protocol/index.ts';
import type { EpisodeSummary, ProgressPoint, Publisher, SceneInit, ThumbnailImage } from './hub.ts';

export interface ConnectOptions {
  role: Role;
  token?: string;
  client?: string;
  /** Subprotocols to offer (default [progress-bridge.v1]); tests offer others to see the refusal. */
  protocols?: string[];
  /** Origin header, as a browser would send it. */
  origin?: string;
  /** Role `rig`: the spec sent in hello (src/protocol/rig.ts). */
  rig?: RigSpec;
  /** Give up waiting for `welcome` after this long (default 10000 ms). */
  timeoutMs?: number;
}

/** The connection was refused: by HTTP status at the upgrade, by close code, or by a status reply. */
export class ConnectRefused extends Error {
  constructor(
    message: string,
    readonly closeCode?: number,
    readonly status?: MessageOf<'status'>,
  ) {
    super(message);
  }
}

export class BridgeClient {
  private queue: Message[] = [];
  private waiters: {
    type: MessageType | undefined;
    resolve: (m: Message) => void;
    reject: (e: Error) => void;
  }[] = [];
  /** Messages received that failed validation (should stay empty against our server). */
  readonly invalid: ProtocolError[] = [];
  closed: { code: number; reason: string } | undefined;
  welcome: Welcome | undefined;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data, isBinary) => {
      if (!isBinary) return;
      let msg: Message;
      try {
        msg = decodeMessage(data as Buffer);
      } catch (err) {
        if (err instanceof ProtocolError) this.invalid.push(err);
        return;
      }
      const i = this.waiters.findIndex((w) => w.type === undefined || w.type === msg.type);
      if (i >= 0) this.waiters.splice(i, 1)[0]!.resolve(msg);
      else this.queue.push(msg);
    });
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      for (const w of this.waiters.splice(0)) {
        w.reject(new ConnectRefused(`connection closed (${code} ${reason.toString()})`, code));
      }
    });
  }

  /** Opens the socket and sends `hello` without waiting for the answer. */
  static open(url: string, options: ConnectOptions): Promise<BridgeClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, options.protocols ?? [SUBPROTOCOL], {
        ...(options.origin ? { origin: options.origin } : {}),
        maxPayload: 256 * 1024 * 1024,
      });
      const client = new BridgeClient(ws);
      ws.once('unexpected-response', (_req, res) => {
        reject(new ConnectRefused(`upgrade refused: HTTP ${res.statusCode}`));
        ws.terminate();
      });
      ws.once('error', (err) => reject(err));
      ws.once('open', () => {
        const hello: MessageOf<'hello'> = { type: 'hello', role: options.role };
        if (options.token !== undefined) hello.token = options.token;
        if (options.client !== undefined) hello.client = options.client;
        if (options.rig !== undefined) hello.rig = options.rig;
        client.send(hello);
        resolve(client);
      });
    });
  }

  /** Connects and waits for `welcome`; rejects with ConnectRefused on a status error or close. */
  static async connect(url: string, options: ConnectOptions): Promise<BridgeClient> {
    const client = await BridgeClient.open(url, options);
    const first = await client.next(undefined, options.timeoutMs ?? 10_000);
    if (first.type === 'welcome') {
      client.welcome = first;
      return client;
    }
    client.ws.terminate();
    if (first.type === 'status')
      throw new ConnectRefused(`${first.code}: ${first.message}`, undefined, first);
    throw new ConnectRefused(`expected welcome, got ${first.type}`);
  }

  send(message: Message): void {
    this.ws.send(encodeMessage(message), { binary: true });
  }

  /** Sends bytes as they are (tests send garbage this way). */
  sendRaw(data: Uint8Array | string, binary = true): void {
    this.ws.send(data, { binary });
  }

  /** The next message (of one type, skipping and keeping others), waiting up to `timeoutMs`. */
  next<T extends MessageType>(type: T, timeoutMs?: number): Promise<MessageOf<T>>;
  next(type?: undefined, timeoutMs?: number): Promise<Message>;
  next(type?: MessageType, timeoutMs = 5000): Promise<Message> {
    const i = this.queue.findIndex((m) => type === undefined || m.type === type);
    if (i >= 0) return Promise.resolve(this.queue.splice(i, 1)[0]!);
    if (this.closed)
      return Promise.reject(
        new ConnectRefused(`connection closed (${this.closed.code} ${this.closed.reason})`, this.closed.code),
      );
    return new Promise((resolve, reject) => {
      const waiter = {
        type,
        resolve: (m: Message) => {
          clearTimeout(timer);
          resolve(m);
        },
        reject: (e: Error) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(new Error(`no ${type ?? 'message'} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  /** Messages received and not yet taken (drains the queue). */
  drain(): Message[] {
    return this.queue.splice(0);
  }

  /** Resolves when the server closes the connection. */
  whenClosed(): Promise<{ code: number; reason: string }> {
    if (this.closed) return Promise.resolve(this.closed);
    return new Promise((resolve) =>
      this.ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
    );
  }

  close(): void {
    this.ws.close();
  }
}

/**
 * The Publisher API over a WebSocket, for a trainer in another process: the same calls as the in-process hub.
 * Frames are skipped (newest wins) while the socket's send buffer is above `highWaterBytes`.
 */
export class RemotePublisher implements Publisher {
  private sceneId = 0;
  private readonly seq = new Map<number, number>();
  private readonly lastThumb = new Map<string, number>();
  /** Viewers are not known remotely; producers should assume someone watches. */
  readonly viewerCount = 1;

  constructor(
    readonly client: BridgeClient,
    private readonly highWaterBytes = 1024 * 1024,
    private readonly thumbnailIntervalMs = 500,
  ) {}

  static async connect(url: string, token: string, client = 'remote publisher'): Promise<RemotePublisher> {
    return new RemotePublisher(await BridgeClient.connect(url, { role: 'publisher', token, client }));
  }

  setScene(scene: SceneInit): number {
    this.sceneId = Math.max(this.sceneId + 1, Date.now());
    this.client.send({ type: 'scene', sceneId: this.sceneId, ...scene });
    return this.sceneId;
  }

  poses(env: number, pos: Float32Array, quat: Float32Array, time: number): void {
    const seq = (this.seq.get(env) ?? 0) + 1;
    this.seq.set(env, seq);
    if (this.client.ws.bufferedAmount > this.highWaterBytes) return;
    this.client.send({
      type: 'frame',
      sceneId: this.sceneId,
      env,
      seq,
      time,
      pos: toTensor(pos, [pos.length / 3, 3]),
      quat: toTensor(quat, [quat.length / 4, 4]),
    });
  }

  progress(env: number, p: ProgressPoint, source?: string): void {
    const msg: MessageOf<'progress'> = {
      type: 'progress',
      env,
      episode: p.episode,
      step: p.step,
      phi: [p.phi],
      shaped: [p.shaped],
      sparse: [p.sparse],
    };
    if (source !== undefined) msg.source = source;
    this.client.send(msg);
  }

  episode(summary: EpisodeSummary): void {
    this.client.send({ type: 'episode', ...summary });
  }

  metrics(step: number, values: Record<string, number>): void {
    this.client.send({ type: 'metrics', step, values });
  }

  thumbnail(env: number, camera: string, step: number, image: ThumbnailImage): void {
    this.lastThumb.set(`${env}/${camera}`, performance.now());
    this.client.send({ type: 'thumbnail', env, camera, step, ...image });
  }

  thumbnailDue(env: number, camera: string): boolean {
    const last = this.lastThumb.get(`${env}/${camera}`);
    return last === undefined || performance.now() - last >= this.thumbnailIntervalMs;
  }

  close(): void {
    this.client.close();
  }
}
