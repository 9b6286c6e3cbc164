/**
 * The bridge's state and its producer-side API (`Publisher`): what the training loop, a rollout or a passive
 * viewer calls to show things, in process. Remote publishers' messages land here too (`apply`).
 *
 * The hub keeps only what a viewer that connects now needs, bounded: the scene, the newest pose per env, the
 * current episode's per-step curve per env, the last few thousand episode summaries and metrics, and the newest
 * thumbnail per (env, camera). Poses are copied on `poses()` (callers reuse their buffers) and encoded once per
 * server tick, whatever the number of viewers.
 */
import {
  encodeMessage,
  fromTensor,
  ProtocolError,
  toTensor,
  type Episode,
  type Frame,
  type Metrics,
  type Progress,
  type Scene,
  type Thumbnail,
} from '../protocol/index.ts';

/** A scene as producers give it: the server assigns `sceneId`. */
export type SceneInit = Omit<Scene, 'type' | 'sceneId'>;

/** One step of one env's current episode (panel data). */
export interface ProgressPoint {
  episode: number;
  /** Control step within the episode of the state whose Phi this is (0 = reset state). */
  step: number;
  /** Progress potential in [0, 1] stored for this state. */
  phi: number;
  /** Shaped reward of the transition into this state (0 for the reset state). */
  shaped: number;
  /** Sparse task reward of that transition. */
  sparse: number;
}

export type EpisodeSummary = Omit<Episode, 'type'>;

export interface ThumbnailImage {
  mime: 'image/png' | 'image/jpeg';
  width: number;
  height: number;
  data: Uint8Array;
}

/**
 * What a training loop calls to be watched. Every method is cheap and never blocks on viewers: poses are copied,
 * everything is encoded later on the server's tick, and nothing queues per viewer.
 */
export interface Publisher {
  /** Sets (or replaces) the scene every env shares; returns its id. Call before `poses`. */
  setScene(scene: SceneInit): number;
  /** The newest body poses of one env: pos float32 [nbody * 3], quat float32 [nbody * 4] ([w, x, y, z]). */
  poses(env: number, pos: Float32Array, quat: Float32Array, time: number): void;
  /** One step of one env's current episode for the Phi / shaped / sparse panels. */
  progress(env: number, point: ProgressPoint, source?: string): void;
  /** A finished episode, for the returns and success-rate panels. */
  episode(summary: EpisodeSummary): void;
  /** Training scalars at a global step (losses, KL, learning rate). */
  metrics(step: number, values: Record<string, number>): void;
  /** The newest image one camera of one env produced (what the reward model saw). */
  thumbnail(env: number, camera: string, step: number, image: ThumbnailImage): void;
  /** Whether a thumbnail for (env, camera) would be shown now: someone watches and the last one is old enough.
   * Producers check this before rendering and encoding an image nobody would see. */
  thumbnailDue(env: number, camera: string): boolean;
  /** Connected viewers (producers may skip optional work when there are none). */
  readonly viewerCount: number;
}

export interface HubOptions {
  /** Least time between thumbnails of one (env, camera), ms (default 500: "a low rate"). */
  thumbnailIntervalMs?: number;
  /** Episode summaries and metrics rows kept for viewers that join late (default 5000 each). */
  historyLength?: number;
  /** Most steps of one episode's curve kept (default 20000). */
  maxEpisodePoints?: number;
}

/** Per-env stream state. `version` counts ticks at which a new pose was taken; viewers compare against it. */
export class EnvStream {
  pos = new Float32Array(0);
  quat = new Float32Array(0);
  time = 0;
  seq = 0;
  dirty = false;
  version = 0;
  encoded: Uint8Array | undefined;
  // The current episode's curve.
  episode = -1;
  step0 = 0;
  phi: number[] = [];
  shaped: number[] = [];
  sparse: number[] = [];
  source: string | undefined;

  constructor(readonly env: number) {}

  /** Steps of the current curve from absolute step `from` to the end, as a message. */
  progressFrom(from: number): Progress {
    const i = Math.max(0, from - this.step0);
    const msg: Progress = {
      type: 'progress',
      env: this.env,
      episode: this.episode,
      step: this.step0 + i,
      phi: this.phi.slice(i),
      shaped: this.shaped.slice(i),
      sparse: this.sparse.slice(i),
    };
    if (this.source !== undefined) msg.source = this.source;
    return msg;
  }

  get progressEnd(): number {
    return this.step0 + this.phi.length;
  }
}

/** A bounded log of encoded messages with absolute indices, for cursors that survive trimming. */
export class EncodedLog {
  private items: Uint8Array[] = [];
  /** Absolute index of items[0]. */
  base = 0;
  constructor(private readonly capacity: number) {}
  push(bytes: Uint8Array): void {
    this.items.push(bytes);
    if (this.items.length > this.capacity) {
      // Trim in chunks so pushes stay O(1) amortised.
      const cut = Math.ceil(this.capacity / 4);
      this.items = this.items.slice(cut);
      this.base += cut;
    }
  }
  get end(): number {
    return this.base + this.items.length;
  }
  /** Items from absolute index `from` (clamped to what is kept) to the end. */
  from(from: number): Uint8Array[] {
    return this.items.slice(Math.max(0, from - this.base));
  }
}

export class Hub implements Publisher {
  scene: Scene | undefined;
  sceneEncoded: Uint8Array | undefined;
  readonly envs = new Map<number, EnvStream>();
  readonly episodes: EncodedLog;
  readonly metricsLog: EncodedLog;
  readonly thumbnails = new Map<string, { env: number; version: number; encoded: Uint8Array; at: number }>();
  /** Set by the server: how many viewers are connected. */
  viewerCount = 0;
  private thumbVersion = 0;
  private readonly thumbnailIntervalMs: number;
  private readonly maxEpisodePoints: number;

  constructor(options: HubOptions = {}) {
    this.thumbnailIntervalMs = options.thumbnailIntervalMs ?? 500;
    this.episodes = new EncodedLog(options.historyLength ?? 5000);
    this.metricsLog = new EncodedLog(options.historyLength ?? 5000);
    this.maxEpisodePoints = options.maxEpisodePoints ?? 20_000;
  }

  get sceneId(): number {
    return this.scene?.sceneId ?? 0;
  }

  setScene(init: SceneInit): number {
    const scene: Scene = { type: 'scene', sceneId: this.sceneId + 1, ...init };
    this.installScene(scene);
    return scene.sceneId;
  }

  private installScene(scene: Scene): void {
    this.scene = scene;
    this.sceneEncoded = encodeMessage(scene);
    // Old poses have another body count; old curves and thumbnails belong to the old envs.
    this.envs.clear();
    this.thumbnails.clear();
    const nbody = scene.bodies.length;
    for (const env of scene.envIds) {
      const s = new EnvStream(env);
      s.pos = new Float32Array(3 * nbody);
      s.quat = new Float32Array(4 * nbody);
      this.envs.set(env, s);
    }
  }

  private stream(env: number, what: string): EnvStream {
    if (!this.scene) throw new ProtocolError('SCENE_MISMATCH', `${what} before any scene was set`, 'env');
    const s = this.envs.get(env);
    if (!s) {
      throw new ProtocolError(
        'SCENE_MISMATCH',
        `env ${env} is not in the scene's envIds (${this.scene.envIds.join(', ')})`,
        'env',
      );
    }
    return s;
  }

  poses(env: number, pos: Float32Array, quat: Float32Array, time: number): void {
    const s = this.stream(env, 'poses');
    if (pos.length !== s.pos.length || quat.length !== s.quat.length) {
      throw new ProtocolError(
        'SCENE_MISMATCH',
        `poses for ${pos.length / 3} / ${quat.length / 4} bodies; the scene has ${s.pos.length / 3}`,
        'pos',
      );
    }
    s.pos.set(pos);
    s.quat.set(quat);
    s.time = time;
    s.seq++;
    s.dirty = true;
  }

  progress(env: number, p: ProgressPoint, source?: string): void {
    const s = this.stream(env, 'progress');
    this.appendProgress(s, p.episode, p.step, [p.phi], [p.shaped], [p.sparse], source);
  }

  private appendProgress(
    s: EnvStream,
    episode: number,
    step: number,
    phi: number[],
    shaped: number[],
    sparse: number[],
    source: string | undefined,
  ): void {
    if (episode !== s.episode || step !== s.progressEnd) {
      // A new episode, or a gap or rewind inside one: the curve restarts at this step.
      s.episode = episode;
      s.step0 = step;
      s.phi = [];
      s.shaped = [];
      s.sparse = [];
    }
    s.source = source;
    for (let i = 0; i < phi.length; i++) {
      if (!Number.isFinite(phi[i]) || !Number.isFinite(shaped[i]) || !Number.isFinite(sparse[i])) {
        // A missing Phi is the trainer's to impute (DESIGN.md); the panels only show stored, finite values.
        throw new ProtocolError(
          'OUT_OF_RANGE',
          `step ${step + i}: phi, shaped and sparse must be finite`,
          'phi',
        );
      }
      s.phi.push(clamp01(phi[i]!));
      s.shaped.push(shaped[i]!);
      s.sparse.push(sparse[i]!);
    }
    const over = s.phi.length - this.maxEpisodePoints;
    if (over > 0) {
      s.phi.splice(0, over);
      s.shaped.splice(0, over);
      s.sparse.splice(0, over);
      s.step0 += over;
    }
  }

  episode(summary: EpisodeSummary): void {
    this.stream(summary.env, 'episode');
    this.episodes.push(encodeMessage({ type: 'episode', ...summary }));
  }

  metrics(step: number, values: Record<string, number>): void {
    this.metricsLog.push(encodeMessage({ type: 'metrics', step, values }));
  }

  thumbnail(env: number, camera: string, step: number, image: ThumbnailImage): void {
    this.stream(env, 'thumbnail');
    const msg: Thumbnail = { type: 'thumbnail', env, camera, step, ...image };
    this.thumbnails.set(`${env}/${camera}`, {
      env,
      version: ++this.thumbVersion,
      encoded: encodeMessage(msg),
      at: performance.now(),
    });
  }

  thumbnailDue(env: number, camera: string): boolean {
    if (this.viewerCount === 0 || !this.envs.has(env)) return false;
    const last = this.thumbnails.get(`${env}/${camera}`);
    return !last || performance.now() - last.at >= this.thumbnailIntervalMs;
  }

  /** Takes a message from a remote publisher (already schema-checked). Throws SCENE_MISMATCH when it does not
   * fit the current scene. */
  apply(msg: Scene | Frame | Progress | Episode | Metrics | Thumbnail): void {
    switch (msg.type) {
      case 'scene':
        // The publisher's id is kept: its frames carry it. Viewers notice any change of id, not only increases.
        this.installScene(msg);
        return;
      case 'frame': {
        if (msg.sceneId !== this.sceneId) {
          throw new ProtocolError(
            'SCENE_MISMATCH',
            `frame for scene ${msg.sceneId}; the current one is ${this.sceneId}`,
            'sceneId',
          );
        }
        this.poses(msg.env, fromTensor(msg.pos), fromTensor(msg.quat), msg.time);
        return;
      }
      case 'progress':
        this.appendProgress(
          this.stream(msg.env, 'progress'),
          msg.episode,
          msg.step,
          msg.phi,
          msg.shaped,
          msg.sparse,
          msg.source,
        );
        return;
      case 'episode': {
        const { type: _type, ...summary } = msg;
        this.episode(summary);
        return;
      }
      case 'metrics':
        this.metrics(msg.step, msg.values);
        return;
      case 'thumbnail':
        this.thumbnail(msg.env, msg.camera, msg.step, msg);
        return;
      default: {
        const never: never = msg;
        throw new Error(`unhandled message ${String((never as { type: unknown }).type)}`);
      }
    }
  }

  /** Once per server tick: encodes each env's pose if it changed since the last tick. */
  tick(): void {
    const sceneId = this.sceneId;
    for (const s of this.envs.values()) {
      if (!s.dirty) continue;
      s.dirty = false;
      s.version++;
      const nbody = s.pos.length / 3;
      const frame: Frame = {
        type: 'frame',
        sceneId,
        env: s.env,
        seq: s.seq,
        time: s.time,
        pos: toTensor(s.pos, [nbody, 3]),
        quat: toTensor(s.quat, [nbody, 4]),
      };
      s.encoded = encodeMessage(frame);
    }
  }
}

function clamp01(v: number): number {
  return v < 0 ? 0 : v > 1 ? 1 : v;
}
