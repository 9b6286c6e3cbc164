/**
 * The viewer's WebSocket: subprotocol progress-bridge.v1, hello as a viewer (with `?token=` from the page URL
 * when there is one), every server message validated with the same schemas the server uses, and reconnection
 * with exponential backoff and jitter. Refusals that retrying cannot fix (wrong token, wrong protocol) stop it.
 */
import {
  CLOSE,
  decodeRaw,
  encodeMessage,
  Message,
  SUBPROTOCOL,
  type Message as Msg,
} from '../src/protocol/index.ts';

export type ConnectionState = 'connecting' | 'open' | 'closed' | 'refused';

export interface ConnectionEvents {
  onMessage(msg: Msg): void;
  onState(state: ConnectionState, detail: string): void;
  /** Called after `welcome`, to (re)send subscriptions. */
  onOpen(send: (msg: Msg) => void): void;
}

const FIRST_DELAY_MS = 500;
const MAX_DELAY_MS = 10_000;
/** The server sends telemetry every second: this long without any message means the link is dead. Browsers
 * answer the server's pings but do not tell the page, and a dropped network may not close the socket for
 * minutes. */
const SILENCE_MS = 5000;

export class Connection {
  private ws: WebSocket | undefined;
  private attempt = 0;
  private timer: number | undefined;
  private stopped = false;
  private lastMessage = 0;
  private watchdog: number | undefined;

  constructor(
    private readonly url: string,
    private readonly token: string | undefined,
    private readonly events: ConnectionEvents,
  ) {}

  start(): void {
    this.stopped = false;
    this.connect();
  }

  send(msg: Msg): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(encodeMessage(msg));
  }

  private connect(): void {
    this.events.onState('connecting', this.attempt > 0 ? `attempt ${this.attempt + 1}` : '');
    const ws = new WebSocket(this.url, SUBPROTOCOL);
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    ws.onopen = () => {
      this.lastMessage = performance.now();
      const hello: Msg = {
        type: 'hello',
        role: 'viewer',
        client: `viewer/${navigator.userAgent.slice(0, 80)}`,
      };
      if (this.token) hello.token = this.token;
      ws.send(encodeMessage(hello));
    };
    window.clearInterval(this.watchdog);
    this.watchdog = window.setInterval(() => {
      if (ws.readyState === WebSocket.OPEN && performance.now() - this.lastMessage > SILENCE_MS)
        ws.close(4000, 'silent');
    }, 1000);
    ws.onmessage = (ev) => {
      this.lastMessage = performance.now();
      if (!(ev.data instanceof ArrayBuffer)) return;
      let msg: Msg;
      try {
        msg = Message.parse(decodeRaw(new Uint8Array(ev.data)));
      } catch (err) {
        console.warn('bridge: dropped an invalid message', err);
        return;
      }
      if (msg.type === 'welcome') {
        this.attempt = 0;
        this.events.onState('open', `session ${msg.session}, ${msg.rateHz} Hz`);
        this.events.onOpen((m) => this.send(m));
      }
      this.events.onMessage(msg);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      window.clearInterval(this.watchdog);
      this.ws = undefined;
      if (ev.code === CLOSE.UNAUTHORIZED || ev.code === CLOSE.UNSUPPORTED_SUBPROTOCOL) {
        const hint = ev.code === CLOSE.UNAUTHORIZED ? ' (open the URL the server printed, with ?token=)' : '';
        this.events.onState('refused', `${ev.code} ${ev.reason}${hint}`);
        return;
      }
      if (this.stopped) return;
      const base = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** this.attempt);
      // Jitter spreads reconnects of many tabs after a server restart.
      const delay = Math.round(base * (0.8 + 0.4 * Math.random()));
      this.attempt++;
      this.events.onState('closed', `reconnecting in ${(delay / 1000).toFixed(1)} s`);
      this.timer = window.setTimeout(() => this.connect(), delay);
    };
  }

  stop(): void {
    this.stopped = true;
    window.clearTimeout(this.timer);
    this.ws?.close();
  }
}
