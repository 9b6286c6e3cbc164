/**
 * The rig episode store: every step a rig sends, on disk before the server acknowledges it. Layout and record
 * fields are documented in docs/rig.md; in short, one directory per episode:
 *
 *   <root>/<rig>/episode-000042/
 *     episode.json   metadata, written atomically at the first step (rig spec, policy, reward model, gamma)
 *     frames.bin     the frames exactly as received, back to back; steps.jsonl gives offset, length, crc32
 *     steps.jsonl    one JSON record per line: `step`, `reward`, `mark`, `end`
 *
 * Durability: `appendStep` writes the frames, then the step line, then fdatasyncs both files before it resolves,
 * and the server sends the step's action only after that. A crash (of anything) therefore loses at most the
 * step in flight, which was never acknowledged. `reward` and `mark` lines ride on the next sync. A reader keeps
 * every complete line, ignores a torn last line (and a last step whose frames did not reach the disk), and takes
 * an episode without an `end` line as truncated: its writer died.
 */
import { mkdir, open, readdir, readFile, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import type { FrameEncoding, RigEpisodeEnd, RigSpec } from '../protocol/rig.ts';
import { ProgressBridgeError } from '../sim/errors.ts';
import { atomicWriteFile } from '../util/atomic-write.ts';

export const EPISODE_FORMAT = 'progress-bridge.rig-episode.v1';

/** An episode directory that cannot be read as the format says (not a torn tail, which is expected). */
export class EpisodeStoreError extends ProgressBridgeError {
  readonly path: string;
  constructor(path: string, detail: string, options?: { cause?: unknown }) {
    super('EPISODE_STORE', `${path}: ${detail}`, options);
    this.path = path;
  }
}

/** Where one frame's bytes are in frames.bin. */
export interface FrameRef {
  offset: number;
  length: number;
  encoding: FrameEncoding;
  /** CRC-32 (zlib's) of the bytes, so a reader can tell a frame that never fully reached the disk. */
  crc32: number;
}

/** One observation, the action answered for it and how that action was decided. */
export interface StepRecord {
  kind: 'step';
  /** Index of the observation in the episode (0 = the first). */
  step: number;
  seq: number;
  /** The rig's clock (s). */
  rigTime: number;
  /** Server wall clock when the observation arrived (ms since the Unix epoch). */
  serverTime: number;
  frames: Record<string, FrameRef>;
  proprio: number[];
  /** The rig's success sensor, when it has one. */
  success?: boolean;
  /** The action a human executed instead of the server's for the transition into this state (HIL-SERL). */
  intervention?: number[];
  /** The rig held its command instead of applying the previous action (it came too late for the rig). */
  held?: boolean;
  /** Simulated rigs only: privileged progress. */
  privileged?: number;
  /** The action the server answered with (inside the declared bounds). */
  action: number[];
  /** Where the action came from (`onnx:<path>`, `learner`, `zero`). */
  policy: string;
  /** Decided more than the deadline after the observation arrived: the rig is told not to apply it. */
  late: boolean;
  decideMs: number;
}

/**
 * The settled potential of state `step` and the reward of the transition into it (step 0 has no transition:
 * reward and shaped are 0). Written once per state, in order, when the model has answered (or the answer was
 * given up on) and the state is known to be final or not.
 */
export interface RewardRecord {
  kind: 'reward';
  step: number;
  /** Phi(s_step) as used for shaping (missing answers hold the previous state's). */
  phi: number;
  /** The model's own answer, null when missing (timeout, error, not scored). */
  answer: number | null;
  /** The model's status for this state (`ok`, `timeout`, `error`, `parse_error`, `none`). */
  status: string;
  /** Sparse reward of the transition into this state. */
  reward: number;
  shaped: number;
  terminated: boolean;
  truncated: boolean;
}

export interface MarkRecord {
  kind: 'mark';
  /** The newest state when the mark came. */
  step: number;
  outcome: 'success' | 'failure';
  serverTime: number;
}

export interface EndRecord extends RigEpisodeEnd {
  kind: 'end';
  serverTime: number;
}

export type StoreRecord = StepRecord | RewardRecord | MarkRecord | EndRecord;

/** episode.json */
export interface EpisodeMeta {
  format: typeof EPISODE_FORMAT;
  rig: string;
  episode: number;
  /** ISO time of the first step. */
  startedAt: string;
  spec: RigSpec;
  policy: string;
  reward: string;
  gamma: number;
  deadlineMs: number;
}

/** A frame to store with its step. */
export interface IncomingFrame {
  camera: string;
  encoding: FrameEncoding;
  data: Uint8Array;
}

export function episodeDirName(episode: number): string {
  return `episode-${String(episode).padStart(6, '0')}`;
}

/** The next free episode number of a rig: one past the highest directory on disk (0 for a new rig). */
export async function nextEpisodeNumber(root: string, rig: string): Promise<number> {
  let names: string[];
  try {
    names = await readdir(join(root, rig));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
  let next = 0;
  for (const n of names) {
    const m = /^episode-(\d+)$/.exec(n);
    if (m) next = Math.max(next, Number(m[1]) + 1);
  }
  return next;
}

/** Appends one episode. Calls are queued internally, so they reach the files in the order they were made. */
export class EpisodeWriter {
  private framesOffset = 0;
  private chain: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(
    readonly dir: string,
    private readonly frames: FileHandle,
    private readonly steps: FileHandle,
  ) {}

  /** Creates the episode directory (refusing one that exists) and writes episode.json. */
  static async create(root: string, meta: EpisodeMeta): Promise<EpisodeWriter> {
    const dir = join(root, meta.rig, episodeDirName(meta.episode));
    await mkdir(join(root, meta.rig), { recursive: true });
    // Not recursive: an existing directory means two writers for one episode, which must never happen.
    await mkdir(dir);
    await atomicWriteFile(join(dir, 'episode.json'), `${JSON.stringify(meta, null, 2)}\n`);
    const frames = await open(join(dir, 'frames.bin'), 'wx');
    let steps: FileHandle;
    try {
      steps = await open(join(dir, 'steps.jsonl'), 'wx');
    } catch (err) {
      await frames.close();
      throw err;
    }
    return new EpisodeWriter(dir, frames, steps);
  }

  /**
   * Stores a step and its frames durably: resolves once both files are fdatasync'ed. The record's `frames`
   * field is filled in here.
   */
  appendStep(record: Omit<StepRecord, 'frames'>, frames: readonly IncomingFrame[]): Promise<StepRecord> {
    return this.enqueue(async () => {
      const refs: Record<string, FrameRef> = {};
      let offset = this.framesOffset;
      for (const f of frames) {
        refs[f.camera] = { offset, length: f.data.byteLength, encoding: f.encoding, crc32: crc32(f.data) };
        offset += f.data.byteLength;
      }
      if (frames.length > 0) {
        await writeAllv(
          this.frames,
          frames.map((f) => f.data),
        );
      }
      this.framesOffset = offset;
      const full: StepRecord = { ...record, frames: refs };
      await writeAllv(this.steps, [Buffer.from(`${JSON.stringify(full)}\n`)]);
      await Promise.all([frames.length > 0 ? this.frames.datasync() : undefined, this.steps.datasync()]);
      return full;
    });
  }

  /** Appends a reward or mark line; durable with the next step (or `sync`). */
  append(record: RewardRecord | MarkRecord): Promise<void> {
    return this.enqueue(() => writeAllv(this.steps, [Buffer.from(`${JSON.stringify(record)}\n`)]));
  }

  sync(): Promise<void> {
    return this.enqueue(() => this.steps.datasync());
  }

  /** Writes the end line, syncs and closes. */
  end(record: EndRecord): Promise<void> {
    return this.enqueue(async () => {
      await writeAllv(this.steps, [Buffer.from(`${JSON.stringify(record)}\n`)]);
      await this.steps.datasync();
      await this.closeFiles();
    });
  }

  /** Closes without an end line (what a crash leaves; readers take the episode as truncated). */
  abandon(): Promise<void> {
    return this.enqueue(() => this.closeFiles());
  }

  private async closeFiles(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([this.frames.close(), this.steps.close()]);
  }

  private enqueue<T>(task: () => Promise<T>): Promise<T> {
    const run = this.chain.then(() => {
      if (this.closed) throw new EpisodeStoreError(this.dir, 'episode writer is closed');
      return task();
    });
    // A failed write must not stop later calls from reporting their own outcome.
    this.chain = run.catch(() => undefined);
    return run;
  }
}

async function writeAllv(handle: FileHandle, buffers: Uint8Array[]): Promise<void> {
  let total = 0;
  for (const b of buffers) total += b.byteLength;
  const { bytesWritten } = await handle.writev(buffers);
  if (bytesWritten === total) return;
  // Short writes are rare (full disk, signals); finish the rest one buffer at a time.
  let skip = bytesWritten;
  for (const b of buffers) {
    if (skip >= b.byteLength) {
      skip -= b.byteLength;
      continue;
    }
    let done = skip;
    skip = 0;
    while (done < b.byteLength) {
      const r = await handle.write(b, done, b.byteLength - done);
      if (r.bytesWritten === 0) throw new Error('write made no progress (disk full?)');
      done += r.bytesWritten;
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Reading

/** A step with its settled reward (absent when the episode ended before the model answered and none was kept). */
export interface StoredStep extends StepRecord {
  reward?: RewardRecord;
}

export interface StoredEpisode {
  dir: string;
  meta: EpisodeMeta;
  steps: StoredStep[];
  marks: MarkRecord[];
  /** The end line, when the writer lived to write it. */
  end: EndRecord | undefined;
  /** Ended as truncated, or never ended (the writer died). */
  truncated: boolean;
  terminated: boolean;
  /** A torn last line or a last step whose frames were not all on disk was dropped (the step in flight). */
  tornTail: boolean;
}

/** Reads an episode directory; tolerates exactly what a crash can leave (a torn tail). */
export async function readEpisode(dir: string): Promise<StoredEpisode> {
  let meta: EpisodeMeta;
  try {
    meta = JSON.parse(await readFile(join(dir, 'episode.json'), 'utf8')) as EpisodeMeta;
  } catch (err) {
    throw new EpisodeStoreError(dir, `episode.json unreadable: ${(err as Error).message}`, { cause: err });
  }
  if (meta.format !== EPISODE_FORMAT) {
    throw new EpisodeStoreError(dir, `format ${String(meta.format)}, expected ${EPISODE_FORMAT}`);
  }
  const text = await readFile(join(dir, 'steps.jsonl'), 'utf8');
  const framesSize = (await stat(join(dir, 'frames.bin'))).size;
  const lines = text.split('\n');
  // Everything after the last newline is a line whose write did not finish.
  let tornTail = lines.pop() !== '';
  const steps: StoredStep[] = [];
  const marks: MarkRecord[] = [];
  let end: EndRecord | undefined;
  lines.forEach((line, i) => {
    let rec: StoreRecord;
    try {
      rec = JSON.parse(line) as StoreRecord;
    } catch (err) {
      throw new EpisodeStoreError(dir, `steps.jsonl line ${i + 1} is not JSON`, { cause: err });
    }
    if (rec.kind === 'step') {
      if (rec.step !== steps.length) {
        throw new EpisodeStoreError(dir, `line ${i + 1}: step ${rec.step}, expected ${steps.length}`);
      }
      steps.push(rec);
    } else if (rec.kind === 'reward') {
      const s = steps[rec.step];
      if (!s) throw new EpisodeStoreError(dir, `line ${i + 1}: reward for unknown step ${rec.step}`);
      s.reward = rec;
    } else if (rec.kind === 'mark') {
      marks.push(rec);
    } else if (rec.kind === 'end') {
      end = rec;
    } else {
      throw new EpisodeStoreError(
        dir,
        `line ${i + 1}: unknown record kind ${String((rec as { kind: unknown }).kind)}`,
      );
    }
  });
  const last = steps[steps.length - 1];
  if (last && !end && Object.values(last.frames).some((f) => f.offset + f.length > framesSize)) {
    steps.pop();
    tornTail = true;
  }
  return {
    dir,
    meta,
    steps,
    marks,
    end,
    truncated: end ? end.truncated : true,
    terminated: end ? end.terminated : false,
    tornTail,
  };
}

/** One stored frame's bytes, checked against its CRC. */
export async function readFrame(dir: string, ref: FrameRef): Promise<Uint8Array> {
  const handle = await open(join(dir, 'frames.bin'), 'r');
  try {
    const buf = Buffer.alloc(ref.length);
    const { bytesRead } = await handle.read(buf, 0, ref.length, ref.offset);
    if (bytesRead !== ref.length) {
      throw new EpisodeStoreError(
        dir,
        `frame at ${ref.offset} needs ${ref.length} bytes, file has ${bytesRead}`,
      );
    }
    if (crc32(buf) !== ref.crc32) throw new EpisodeStoreError(dir, `frame at ${ref.offset}: CRC mismatch`);
    return buf;
  } finally {
    await handle.close();
  }
}

/** Episode directories of a rig (or of every rig), oldest first. */
export async function listEpisodes(root: string, rig?: string): Promise<string[]> {
  const rigs = rig ? [rig] : await readdir(root).catch(() => [] as string[]);
  const out: string[] = [];
  for (const r of rigs.sort()) {
    const names = await readdir(join(root, r)).catch(() => [] as string[]);
    for (const n of names.filter((x) => /^episode-\d+$/.test(x)).sort()) out.push(join(root, r, n));
  }
  return out;
}
