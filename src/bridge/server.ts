/**
 * The bridge server: one node:http server for the viewer's static files and the WebSocket endpoint `/ws`.
 *
 * - Handshake: subprotocol `progress-bridge.v1` (anything else is accepted only to be closed with 4406 and a
 *   reason, since a browser cannot read a refused handshake); Origin and Host checked for browsers; then the
 *   client's `hello` with its role and token (control roles always need the token, every role does when the
 *   server listens on a non-loopback address).
 * - Viewers get the scene once, then on every tick the newest pose of each subscribed env, new per-step panel
 *   points, episode summaries, metrics and thumbnails. Nothing queues per viewer: when a socket's
 *   `bufferedAmount` is above the high-water mark the tick skips it, and a later tick sends only the newest
 *   frame (the skipped ones count as dropped). A viewer's memory on the server is therefore bounded by the
 *   high-water mark plus one tick's messages.
 * - Bad input from any peer gets an in-band `status` with a stable code; the server never throws on it.
 * - Heartbeats: a ping every `heartbeatMs`; a peer that has not answered the previous one is terminated.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, WebSocket, type RawData } from 'ws';
import {
  CLOSE,
  CONTROL_ROLES,
  decodeRaw,
  encodeMessage,
  Message,
  ProtocolError,
  SENDERS,
  SUBPROTOCOL,
  type Hello,
  type Role,
  type Status,
  type Subscribe,
} from '../protocol/index.ts';
import { generateToken, isLoopback, originAllowed, tokensEqual } from './auth.ts';
import { Hub, type HubOptions } from './hub.ts';
import { LearnerHost, type LearnerOptions } from './learner/host.ts';
import { RigHost, type RigConnection, type RigHostOptions } from './rig/host.ts';
import { serveStatic } from './static.ts';

export interface BridgeOptions extends HubOptions {
  /** TCP port (default 8787; 0 picks a free one). */
  port?: number;
  /** Address to listen on (default 127.0.0.1). Anything but loopback makes every role need the token. */
  host?: string;
  /** Shared secret; default `PBRIDGE_TOKEN`, else a generated one (`tokenGenerated` tells the caller to print it). */
  token?: string;
  /** Pose frames per second sent to viewers (default 30). */
  rateHz?: number;
  /** Ping interval; a peer missing one pong is terminated at the next (default 15000 ms). */
  heartbeatMs?: number;
  /** Time a new connection has to send `hello` (default 10000 ms). */
  helloTimeoutMs?: number;
  /** Send-buffer bytes above which a viewer's tick is skipped (default 1 MiB). */
  highWaterBytes?: number;
  /** Hard per-message limit enforced by ws itself: larger messages close the connection with 1009 (default 32 MiB). */
  maxPayload?: number;
  /** Largest message a viewer, or any peer before `hello`, may send; larger ones get PAYLOAD_TOO_LARGE (default 64 KiB). */
  viewerMaxMessageBytes?: number;
  /** Extra browser origins allowed to connect ("*" for any). */
  allowOrigins?: readonly string[];
  /** Directory of the built viewer; false serves no files (default: none, the CLI passes the built dir). */
  staticDir?: string | false;
  /** How often each viewer gets telemetry (default 1000 ms). */
  telemetryMs?: number;
  /** Log lines (connections, refusals); default silent. */
  log?: (line: string) => void;
  /** Remote learners: limits, extra tasks and models they may use (src/bridge/learner/host.ts). */
  learner?: LearnerOptions;
  /** The rig role: episode store, policy, reward model (src/bridge/rig/host.ts). Without it rigs are refused. */
  rig?: RigHostOptions;
}

export interface ConnectionStats {
  session: number;
  role: Role | undefined;
  remote: string;
  bufferedAmount: number;
  framesSent: number;
  framesDropped: number;
}

/** One WebSocket connection and what it has been sent. */
class Session {
  role: Role | undefined;
  alive = true;
  helloTimer: NodeJS.Timeout | undefined;
  maxMessageBytes: number;
  /** Envs whose frames and curves this viewer wants; undefined: all. */
  envs: Set<number> | undefined;
  thumbnails = true;
  sceneSent = 0;
  /** Per env: last frame version sent. */
  readonly frameSent = new Map<number, number>();
  /** Per env: episode and next absolute step of the curve sent. */
  readonly curveSent = new Map<number, { episode: number; next: number }>();
  episodesNext = 0;
  metricsNext = 0;
  readonly thumbSent = new Map<string, number>();
  framesSent = 0;
  framesDropped = 0;
  lastTelemetry = 0;

  constructor(
    readonly id: number,
    readonly ws: WebSocket,
    readonly remote: string,
    viewerMax: number,
  ) {
    this.maxMessageBytes = viewerMax;
  }

  wants(env: number): boolean {
    return this.envs === undefined || this.envs.has(env);
  }
}

export class BridgeServer {
  readonly hub: Hub;
  /** Env batches of remote learners. */
  readonly learners: LearnerHost;
  /** Connected rigs, when the server serves them (`rig` option). */
  readonly rigs: RigHost | undefined;
  private readonly rigSessions = new Map<Session, RigConnection>();
  readonly token: string;
  /** True when the token was generated here: the caller should print it (or the viewer URL that carries it). */
  readonly tokenGenerated: boolean;
  readonly host: string;
  readonly rateHz: number;
  private readonly http: Server;
  private readonly wss: WebSocketServer;
  private readonly sessions = new Map<WebSocket, Session>();
  private nextSession = 1;
  private tickTimer: NodeJS.Timeout | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private readonly started = performance.now();
  private readonly opts: Required<
    Pick<
      BridgeOptions,
      | 'heartbeatMs'
      | 'helloTimeoutMs'
      | 'highWaterBytes'
      | 'maxPayload'
      | 'viewerMaxMessageBytes'
      | 'telemetryMs'
    >
  > & { allowOrigins: readonly string[]; log: (line: string) => void; staticDir: string | false };
  private port = 0;
  private readonly loopbackOnly: boolean;

  private constructor(options: BridgeOptions) {
    this.hub = new Hub(options);
    this.learners = new LearnerHost(options.learner, options.log);
    this.rigs = options.rig ? new RigHost({ log: options.log, ...options.rig }) : undefined;
    this.host = options.host ?? '127.0.0.1';
    this.loopbackOnly = isLoopback(this.host);
    const envToken = process.env.PBRIDGE_TOKEN;
    this.token = options.token ?? (envToken && envToken.length > 0 ? envToken : generateToken());
    this.tokenGenerated = options.token === undefined && !envToken;
    this.rateHz = options.rateHz ?? 30;
    if (!(this.rateHz > 0 && this.rateHz <= 1000))
      throw new RangeError(`rateHz must be in (0, 1000], got ${this.rateHz}`);
    this.opts = {
      heartbeatMs: options.heartbeatMs ?? 15_000,
      helloTimeoutMs: options.helloTimeoutMs ?? 10_000,
      highWaterBytes: options.highWaterBytes ?? 1024 * 1024,
      maxPayload: options.maxPayload ?? 32 * 1024 * 1024,
      viewerMaxMessageBytes: options.viewerMaxMessageBytes ?? 64 * 1024,
      telemetryMs: options.telemetryMs ?? 1000,
      allowOrigins: options.allowOrigins ?? [],
      log: options.log ?? (() => {}),
      staticDir: options.staticDir ?? false,
    };
    this.http = createServer((req, res) => this.onHttp(req, res));
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: this.opts.maxPayload,
      perMessageDeflate: false,
      // Echo the client's choice even when it is not ours, so the mismatch can be closed with a readable reason.
      handleProtocols: (protocols) =>
        protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : ([...protocols][0] ?? false),
    });
    this.http.on('upgrade', (req, socket, head) => this.onUpgrade(req, socket, head));
  }

  /** Starts listening; resolves once the port is bound. */
  static async start(options: BridgeOptions = {}): Promise<BridgeServer> {
    const server = new BridgeServer(options);
    await new Promise<void>((resolve, reject) => {
      server.http.once('error', reject);
      server.http.listen(options.port ?? 8787, server.host, () => {
        server.http.off('error', reject);
        resolve();
      });
    });
    server.port = (server.http.address() as AddressInfo).port;
    server.tickTimer = setInterval(() => server.tick(), 1000 / server.rateHz);
    server.heartbeatTimer = setInterval(() => server.heartbeat(), server.opts.heartbeatMs);
    return server;
  }

  /** http://host:port/ as a browser on this machine would open it. */
  get url(): string {
    const h = this.host === '0.0.0.0' || this.host === '::' ? '127.0.0.1' : this.host;
    return `http://${h.includes(':') ? `[${h}]` : h}:${this.port}/`;
  }

  get wsUrl(): string {
    return `${this.url.replace(/^http/, 'ws')}ws`;
  }

  get listenPort(): number {
    return this.port;
  }

  /** Whether viewers need the token (a non-loopback listen address). */
  get viewersNeedToken(): boolean {
    return !this.loopbackOnly;
  }

  /** The URL to open in a browser; carries the token when viewers need it. */
  viewerUrl(): string {
    return this.viewersNeedToken ? `${this.url}?token=${encodeURIComponent(this.token)}` : this.url;
  }

  connections(): ConnectionStats[] {
    return [...this.sessions.values()].map((s) => ({
      session: s.id,
      role: s.role,
      remote: s.remote,
      bufferedAmount: s.ws.bufferedAmount,
      framesSent: s.framesSent,
      framesDropped: s.framesDropped + this.pendingDrops(s),
    }));
  }

  async close(): Promise<void> {
    // Before the sockets close, so running rig episodes end as server_shutdown rather than disconnect.
    await this.rigs?.close();
    clearInterval(this.tickTimer);
    clearInterval(this.heartbeatTimer);
    for (const s of this.sessions.values()) {
      clearTimeout(s.helloTimer);
      s.ws.close(CLOSE.GOING_AWAY, 'server shutting down');
    }
    // Give close frames a moment, then cut whatever is left (a non-reading peer never completes the close).
    await new Promise((r) => setTimeout(r, 50));
    for (const s of this.sessions.values()) s.ws.terminate();
    await this.learners.close();
    this.wss.close();
    await new Promise<void>((resolve) => {
      this.http.close(() => resolve());
      this.http.closeAllConnections();
    });
  }

  // -------------------------------------------------------------------------------------------------------
  // HTTP

  private onHttp(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/api/status') {
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(
        JSON.stringify({
          protocol: SUBPROTOCOL,
          scene: this.hub.scene
            ? { sceneId: this.hub.sceneId, name: this.hub.scene.name, envIds: this.hub.scene.envIds }
            : null,
          viewers: this.hub.viewerCount,
          rateHz: this.rateHz,
          viewersNeedToken: this.viewersNeedToken,
        }),
      );
      return;
    }
    if (this.opts.staticDir === false) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('this bridge serves no viewer files\n');
      return;
    }
    serveStatic(this.opts.staticDir, url.pathname, req, res);
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const refuse = (status: number, reason: string): void => {
      this.opts.log(`refused upgrade from ${req.socket.remoteAddress}: ${reason}`);
      socket.end(
        `HTTP/1.1 ${status} ${status === 403 ? 'Forbidden' : 'Not Found'}\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n${reason}\n`,
      );
    };
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (path !== '/ws') return refuse(404, `no WebSocket endpoint at ${path}; use /ws`);
    const verdict = originAllowed(
      req.headers.origin,
      req.headers.host,
      this.loopbackOnly,
      this.opts.allowOrigins,
    );
    if (!verdict.ok) return refuse(403, verdict.reason);
    this.wss.handleUpgrade(req, socket, head, (ws) => this.onConnection(ws, req));
  }

  // -------------------------------------------------------------------------------------------------------
  // WebSocket

  private onConnection(ws: WebSocket, req: IncomingMessage): void {
    const remote = req.socket.remoteAddress ?? '?';
    if (ws.protocol !== SUBPROTOCOL) {
      const offered = ws.protocol ? `"${ws.protocol}"` : 'none';
      // Close reasons are limited to 123 bytes.
      ws.close(
        CLOSE.UNSUPPORTED_SUBPROTOCOL,
        `subprotocol ${offered} unsupported; use ${SUBPROTOCOL}`.slice(0, 123),
      );
      return;
    }
    const session = new Session(this.nextSession++, ws, remote, this.opts.viewerMaxMessageBytes);
    this.sessions.set(ws, session);
    session.helloTimer = setTimeout(() => {
      this.sendStatus(
        session,
        'error',
        new ProtocolError('HELLO_REQUIRED', `no hello within ${this.opts.helloTimeoutMs} ms`),
      );
      ws.close(CLOSE.BAD_HELLO, 'no hello in time');
    }, this.opts.helloTimeoutMs);
    ws.on('pong', () => {
      session.alive = true;
    });
    ws.on('message', (data, isBinary) => this.onMessage(session, data, isBinary));
    ws.on('error', (err) => this.opts.log(`session ${session.id}: ${err.message}`));
    ws.on('close', () => {
      clearTimeout(session.helloTimer);
      this.sessions.delete(ws);
      // A learner's envs are freed with its connection, whatever the reason it ended.
      void this.learners.disconnect(session.id);
      const rig = this.rigSessions.get(session);
      if (rig) {
        // A rig's running episode is truncated, never terminated, and everything it sent is kept.
        this.rigSessions.delete(session);
        void this.rigs!.detach(rig);
      }
      this.countViewers();
    });
  }

  private onMessage(session: Session, data: RawData, isBinary: boolean): void {
    const bytes = Array.isArray(data)
      ? Buffer.concat(data)
      : Buffer.isBuffer(data)
        ? data
        : Buffer.from(data);
    let ref: string | undefined;
    let req: number | undefined;
    try {
      if (!isBinary)
        throw new ProtocolError(
          'MALFORMED_MESSAGE',
          'text frames are not part of the protocol; send MessagePack in binary frames',
        );
      if (bytes.byteLength > session.maxMessageBytes) {
        throw new ProtocolError(
          'PAYLOAD_TOO_LARGE',
          `${bytes.byteLength} bytes; a ${session.role ?? 'connection before hello'} may send at most ${session.maxMessageBytes}`,
        );
      }
      const raw = decodeRaw(bytes);
      const t = (raw as { type?: unknown } | null)?.type;
      if (typeof t === 'string') ref = t.slice(0, 64);
      // Echoed so a learner with calls on several env batches knows which one a refusal answers.
      const r = (raw as { req?: unknown } | null)?.req;
      if (typeof r === 'number' && Number.isSafeInteger(r) && r >= 0) req = r;
      const msg = Message.parse(raw);
      this.dispatch(session, msg);
    } catch (err) {
      if (err instanceof ProtocolError) {
        this.sendStatus(session, 'error', err, ref, req);
        if (err.code === 'AUTH_REQUIRED' || err.code === 'AUTH_FAILED')
          session.ws.close(CLOSE.UNAUTHORIZED, err.code);
        else if (!session.role && ref === 'hello')
          session.ws.close(CLOSE.BAD_HELLO, `bad hello: ${err.code}`);
        return;
      }
      // A bug of ours, not the peer's: keep serving everyone else and tell this peer something went wrong.
      this.opts.log(`session ${session.id}: internal error ${(err as Error).stack ?? String(err)}`);
      this.sendStatus(
        session,
        'error',
        new ProtocolError('INVALID_VALUE', `server could not handle the message: ${(err as Error).message}`),
        ref,
      );
    }
  }

  private dispatch(session: Session, msg: Message): void {
    if (!session.role && msg.type !== 'hello') {
      throw new ProtocolError('HELLO_REQUIRED', `send hello before ${msg.type}`);
    }
    if (session.role && msg.type === 'hello')
      throw new ProtocolError('ALREADY_GREETED', 'hello was already sent on this connection');
    const senders = SENDERS[msg.type];
    const role = session.role ?? (msg.type === 'hello' ? msg.role : undefined);
    if (!role || !senders.includes(role)) {
      throw new ProtocolError(
        'NOT_ALLOWED',
        `a ${role ?? 'client'} may not send ${msg.type} (sent by: ${senders.join(', ')})`,
      );
    }
    switch (msg.type) {
      case 'hello':
        this.onHello(session, msg);
        return;
      case 'subscribe':
        this.onSubscribe(session, msg);
        return;
      case 'scene':
      case 'frame':
      case 'progress':
      case 'episode':
      case 'metrics':
      case 'thumbnail':
        this.hub.apply(msg);
        return;
      case 'vec_open':
      case 'vec_reset':
      case 'vec_step':
      case 'vec_close':
        this.learners.handle({ id: session.id, send: (m) => this.send(session, m) }, msg);
        return;
      case 'rig_obs':
      case 'rig_reset':
      case 'rig_mark':
        this.rigSessions.get(session)!.submit(msg, performance.now());
        return;
      case 'welcome':
      case 'status':
      case 'telemetry':
      case 'vec_opened':
      case 'vec_reset_result':
      case 'vec_step_result':
      case 'vec_closed':
      case 'rig_ready':
      case 'rig_action':
      case 'rig_episode':
        // SENDERS lists only the server for these; reaching here means that table and this switch disagree.
        throw new ProtocolError('NOT_ALLOWED', `${msg.type} is sent by the server only`);
      default: {
        const never: never = msg;
        throw new ProtocolError(
          'UNKNOWN_TYPE',
          `unhandled message ${String((never as { type: unknown }).type)}`,
        );
      }
    }
  }

  private needsToken(session: Session, role: Role): boolean {
    return CONTROL_ROLES.includes(role) || !this.loopbackOnly || !isLoopback(session.remote);
  }

  private onHello(session: Session, hello: Hello): void {
    const given = hello.token;
    if (given !== undefined && !tokensEqual(this.token, given)) {
      throw new ProtocolError('AUTH_FAILED', 'wrong token', 'token');
    }
    if (given === undefined && this.needsToken(session, hello.role)) {
      throw new ProtocolError(
        'AUTH_REQUIRED',
        CONTROL_ROLES.includes(hello.role)
          ? `role ${hello.role} always needs the token (PBRIDGE_TOKEN or the one the server printed)`
          : 'this server listens beyond loopback: every role needs the token',
        'token',
      );
    }
    if (hello.role === 'rig') this.checkRig(hello);
    clearTimeout(session.helloTimer);
    session.role = hello.role;
    if (hello.role === 'rig') session.maxMessageBytes = this.opts.maxPayload;
    if (hello.role === 'publisher' || hello.role === 'learner')
      session.maxMessageBytes = this.opts.maxPayload;
    this.opts.log(
      `session ${session.id} (${session.remote}) is a ${hello.role}${hello.client ? ` (${hello.client})` : ''}`,
    );
    this.send(session, {
      type: 'welcome',
      protocol: SUBPROTOCOL,
      role: hello.role,
      session: session.id,
      rateHz: this.rateHz,
      maxMessageBytes: session.maxMessageBytes,
    });
    if (hello.role === 'rig') this.attachRig(session, hello);
    if (hello.role === 'viewer') {
      // Late joiners get recent history of the run, not all of it.
      session.episodesNext = Math.max(this.hub.episodes.base, this.hub.episodes.end - 2000);
      session.metricsNext = Math.max(this.hub.metricsLog.base, this.hub.metricsLog.end - 2000);
      this.countViewers();
      // The first data goes out on the next tick, which gives a `subscribe` sent right after hello time to land.
    }
  }

  /** Refuses (before the role is set, so the connection closes with 4400) a rig this server cannot serve. */
  private checkRig(hello: Hello): void {
    if (!this.rigs)
      throw new ProtocolError('NOT_ALLOWED', 'this server was started without rig support', 'role');
    if (!hello.rig)
      throw new ProtocolError('MISSING_FIELD', 'the rig role declares its spec in hello.rig', 'rig');
    this.rigs.check(hello.rig);
  }

  private attachRig(session: Session, hello: Hello): void {
    const rig = this.rigs!.attach(
      {
        id: session.id,
        send: (m) => this.send(session, m),
        status: (level, err, ref) => this.sendStatus(session, level, err, ref),
        close: (code, reason) => session.ws.close(code, reason),
      },
      hello.rig!,
    );
    this.rigSessions.set(session, rig);
  }

  private onSubscribe(session: Session, msg: Subscribe): void {
    session.envs = msg.envs ? new Set(msg.envs) : undefined;
    if (msg.thumbnails !== undefined) session.thumbnails = msg.thumbnails;
    // Frames of newly wanted envs go out at the next tick without counting the time they were unwanted as drops.
    for (const [env, s] of this.hub.envs) if (!session.wants(env)) session.frameSent.set(env, s.version);
  }

  private countViewers(): void {
    let n = 0;
    for (const s of this.sessions.values()) if (s.role === 'viewer') n++;
    this.hub.viewerCount = n;
  }

  private send(session: Session, msg: Message): void {
    this.sendBytes(session, encodeMessage(msg));
  }

  private sendBytes(session: Session, bytes: Uint8Array): void {
    if (session.ws.readyState === WebSocket.OPEN) session.ws.send(bytes, { binary: true });
  }

  private sendStatus(
    session: Session,
    level: Status['level'],
    err: ProtocolError,
    ref?: string,
    req?: number,
  ): void {
    // Messages and paths echo peer input (an unknown type, a field name): cut them to what Status allows, or the
    // peer could not even read the refusal.
    const status: Status = { type: 'status', level, code: err.code, message: err.message.slice(0, 4096) };
    if (err.path) status.path = err.path.slice(0, 512);
    if (ref) status.ref = ref;
    if (req !== undefined) status.req = req;
    this.send(session, status);
  }

  // -------------------------------------------------------------------------------------------------------
  // Streaming

  private tick(): void {
    this.hub.tick();
    for (const s of this.sessions.values()) if (s.role === 'viewer') this.pump(s);
  }

  private congested(session: Session): boolean {
    return session.ws.bufferedAmount > this.opts.highWaterBytes;
  }

  /** Frames newer than what a viewer got, minus the newest one per env (which may still be sent). */
  private pendingDrops(session: Session): number {
    let n = 0;
    for (const [env, s] of this.hub.envs) {
      if (!session.wants(env)) continue;
      const sent = session.frameSent.get(env) ?? 0;
      if (s.version - sent > 1) n += s.version - sent - 1;
    }
    return n;
  }

  /** Sends a viewer what it is missing, newest first in importance: scene, poses, curves, summaries, images. */
  private pump(session: Session): void {
    const hub = this.hub;
    if (session.ws.readyState !== WebSocket.OPEN || this.congested(session)) return;
    if (hub.scene && session.sceneSent !== hub.sceneId) {
      this.sendBytes(session, hub.sceneEncoded!);
      session.sceneSent = hub.sceneId;
      session.frameSent.clear();
      session.curveSent.clear();
      session.thumbSent.clear();
      // Start each env at the version before the current one so the current pose goes out and counts no drops.
      for (const [env, s] of hub.envs) session.frameSent.set(env, Math.max(0, s.version - 1));
      if (this.congested(session)) return;
    }
    if (!hub.scene) {
      // Telemetry still goes out: it is also the viewer's sign that the link is alive.
      this.maybeTelemetry(session);
      return;
    }
    for (const [env, s] of hub.envs) {
      if (!session.wants(env) || !s.encoded) continue;
      const sent = session.frameSent.get(env) ?? 0;
      if (s.version <= sent) continue;
      session.framesDropped += s.version - sent - 1;
      session.frameSent.set(env, s.version);
      this.sendBytes(session, s.encoded);
      session.framesSent++;
    }
    if (this.congested(session)) return;
    for (const [env, s] of hub.envs) {
      if (!session.wants(env) || s.episode < 0) continue;
      const cur = session.curveSent.get(env);
      const from = cur && cur.episode === s.episode ? cur.next : s.step0;
      if (from >= s.progressEnd) continue;
      this.send(session, s.progressFrom(from));
      session.curveSent.set(env, { episode: s.episode, next: s.progressEnd });
    }
    for (const bytes of hub.episodes.from(session.episodesNext)) this.sendBytes(session, bytes);
    session.episodesNext = hub.episodes.end;
    for (const bytes of hub.metricsLog.from(session.metricsNext)) this.sendBytes(session, bytes);
    session.metricsNext = hub.metricsLog.end;
    if (session.thumbnails) {
      for (const [key, t] of hub.thumbnails) {
        if (this.congested(session)) break;
        if (!session.wants(t.env) || (session.thumbSent.get(key) ?? 0) >= t.version) continue;
        this.sendBytes(session, t.encoded);
        session.thumbSent.set(key, t.version);
      }
    }
    this.maybeTelemetry(session);
  }

  private maybeTelemetry(session: Session): void {
    const now = performance.now();
    if (now - session.lastTelemetry < this.opts.telemetryMs) return;
    session.lastTelemetry = now;
    this.send(session, {
      type: 'telemetry',
      framesSent: session.framesSent,
      framesDropped: session.framesDropped + this.pendingDrops(session),
      viewers: this.hub.viewerCount,
      buffered: session.ws.bufferedAmount,
      uptimeS: (now - this.started) / 1000,
    });
  }

  private heartbeat(): void {
    for (const s of this.sessions.values()) {
      if (!s.alive) {
        this.opts.log(`session ${s.id}: no pong within ${this.opts.heartbeatMs} ms, terminating`);
        s.ws.terminate();
        continue;
      }
      s.alive = false;
      s.ws.ping();
    }
  }
}
