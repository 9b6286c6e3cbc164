/**
 * The reward service: sits between many envs and one progress model. Requests from all envs are batched (up to
 * `maxBatch`, waiting at most `maxWaitMs` for a batch to fill), sent with at most `maxInFlight` model calls
 * outstanding, and answered through promises, so the simulator submits and carries on: it never waits for the
 * model. Answers are cached by (env, episode, step), so a state is scored once however often it is asked for.
 *
 * Every request is answered. A model call that rejects, times out or returns the wrong number of answers
 * answers its requests with `error`/`timeout` and NaN progress (missing, never 0); a full queue answers at once
 * with `error` rather than growing without bound.
 */
import { InvalidArgument } from '../sim/errors.ts';
import { missing, type ProgressModel, type ProgressRequest, type ProgressResponse } from './model.ts';

export interface RewardServiceOptions {
  /** Most requests per model call (also capped by the model's own maxBatch). Default 32. */
  maxBatch?: number;
  /** Longest a request waits for others to fill its batch, in ms. Default 2. */
  maxWaitMs?: number;
  /** Model calls outstanding at once. Default 1. */
  maxInFlight?: number;
  /** Requests waiting beyond this are answered `error` at once. Default 65536. */
  maxQueue?: number;
  /** Answers kept for repeated (env, episode, step) keys. Default 16384. */
  cacheSize?: number;
  /** A model call still running after this many ms answers its requests `timeout`. Default 30000. */
  timeoutMs?: number;
}

export interface RewardServiceStats {
  /** Requests waiting for a model call. */
  queueDepth: number;
  /** Model calls running. */
  inFlight: number;
  submitted: number;
  answered: number;
  cacheHits: number;
  /** Answers by status. */
  status: Record<ProgressResponse['status'], number>;
  batches: number;
  meanBatch: number;
  /** Latency percentiles (ms, submission to answer) over the most recent answers. */
  latencyMs: { p50: number; p95: number; p99: number };
  /** Answers per second since the first submission. */
  throughput: number;
}

interface Pending {
  req: ProgressRequest;
  submitted: number;
  resolve: (r: ProgressResponse) => void;
}

/** Latencies kept for percentiles (a ring of the most recent). */
const LATENCY_WINDOW = 4096;

function positiveInt(field: string, v: number, max: number): number {
  if (!Number.isInteger(v) || v < 1 || v > max)
    throw new InvalidArgument(field, `must be an integer in [1, ${max}], got ${v}`);
  return v;
}

export class RewardService {
  private readonly maxBatch: number;
  private readonly maxWaitMs: number;
  private readonly maxInFlight: number;
  private readonly maxQueue: number;
  private readonly cacheSize: number;
  private readonly timeoutMs: number;
  private queue: Pending[] = [];
  private readonly cache = new Map<string, Promise<ProgressResponse>>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private inFlight = 0;
  private closed = false;
  private readonly latencies = new Float64Array(LATENCY_WINDOW);
  private latencyCount = 0;
  private firstSubmit = 0;
  private readonly counts = {
    submitted: 0,
    answered: 0,
    cacheHits: 0,
    batches: 0,
    batched: 0,
    status: { ok: 0, parse_error: 0, timeout: 0, error: 0 } as Record<ProgressResponse['status'], number>,
  };

  constructor(
    private readonly model: ProgressModel,
    options: RewardServiceOptions = {},
  ) {
    this.maxBatch = Math.min(positiveInt('maxBatch', options.maxBatch ?? 32, 65536), model.maxBatch);
    this.maxInFlight = positiveInt('maxInFlight', options.maxInFlight ?? 1, 1024);
    this.maxQueue = positiveInt('maxQueue', options.maxQueue ?? 65536, 1 << 24);
    this.cacheSize = positiveInt('cacheSize', options.cacheSize ?? 16384, 1 << 24);
    this.maxWaitMs = options.maxWaitMs ?? 2;
    if (!(this.maxWaitMs >= 0 && this.maxWaitMs <= 60_000)) {
      throw new InvalidArgument('maxWaitMs', `must be in [0, 60000] ms, got ${this.maxWaitMs}`);
    }
    this.timeoutMs = options.timeoutMs ?? 30_000;
    if (!(this.timeoutMs > 0 && this.timeoutMs <= 3_600_000)) {
      throw new InvalidArgument('timeoutMs', `must be in (0, 3600000] ms, got ${this.timeoutMs}`);
    }
  }

  /** Queues a request; the promise always resolves (failures are answers with a status and NaN progress). */
  submit(req: ProgressRequest): Promise<ProgressResponse> {
    const now = performance.now();
    if (this.counts.submitted === 0) this.firstSubmit = now;
    this.counts.submitted++;
    const key = `${req.envId}:${req.episodeId}:${req.step}`;
    const cached = this.cache.get(key);
    if (cached) {
      this.counts.cacheHits++;
      return cached;
    }
    let answer: Promise<ProgressResponse>;
    if (this.closed) {
      answer = Promise.resolve(
        this.finish(now, missing(this.model.id, 'error', 'the reward service is closed')),
      );
    } else if (this.queue.length >= this.maxQueue) {
      answer = Promise.resolve(
        this.finish(now, missing(this.model.id, 'error', `queue full (${this.maxQueue} requests waiting)`)),
      );
    } else {
      answer = new Promise((resolve) => this.queue.push({ req, submitted: now, resolve }));
      this.schedule();
    }
    this.cache.set(key, answer);
    if (this.cache.size > this.cacheSize) this.cache.delete(this.cache.keys().next().value!);
    return answer;
  }

  stats(): RewardServiceStats {
    const n = Math.min(this.latencyCount, LATENCY_WINDOW);
    const sorted = Float64Array.from(this.latencies.subarray(0, n)).sort();
    const pct = (q: number): number => (n === 0 ? NaN : sorted[Math.min(n - 1, Math.floor(q * n))]!);
    const elapsed = (performance.now() - this.firstSubmit) / 1000;
    return {
      queueDepth: this.queue.length,
      inFlight: this.inFlight,
      submitted: this.counts.submitted,
      answered: this.counts.answered,
      cacheHits: this.counts.cacheHits,
      status: { ...this.counts.status },
      batches: this.counts.batches,
      meanBatch: this.counts.batches > 0 ? this.counts.batched / this.counts.batches : 0,
      latencyMs: { p50: pct(0.5), p95: pct(0.95), p99: pct(0.99) },
      throughput: elapsed > 0 ? this.counts.answered / elapsed : 0,
    };
  }

  /** Answers everything still queued with `error`, stops batching and closes the model. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    const left = this.queue;
    this.queue = [];
    for (const p of left)
      p.resolve(this.finish(p.submitted, missing(this.model.id, 'error', 'the reward service closed')));
    await this.model.close?.();
  }

  private schedule(): void {
    while (this.inFlight < this.maxInFlight && this.queue.length >= this.maxBatch) this.dispatch();
    if (this.queue.length === 0 || this.inFlight >= this.maxInFlight || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.inFlight < this.maxInFlight && this.queue.length > 0) this.dispatch();
      this.schedule();
    }, this.maxWaitMs);
  }

  private dispatch(): void {
    const batch = this.queue.splice(0, this.maxBatch);
    this.inFlight++;
    this.counts.batches++;
    this.counts.batched += batch.length;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.timeoutMs);
    });
    const call = this.model.predict(batch.map((p) => p.req)).then(
      (answers) => ({ answers }),
      (err: unknown) => ({ error: err instanceof Error ? err.message : String(err) }),
    );
    void Promise.race([call, timeout]).then((outcome) => {
      clearTimeout(timer);
      this.inFlight--;
      batch.forEach((p, i) => p.resolve(this.finish(p.submitted, this.answerFor(outcome, i, batch.length))));
      if (!this.closed) this.schedule();
    });
  }

  private answerFor(
    outcome: 'timeout' | { answers: Omit<ProgressResponse, 'latencyMs'>[] } | { error: string },
    i: number,
    n: number,
  ): Omit<ProgressResponse, 'latencyMs'> {
    const id = this.model.id;
    if (outcome === 'timeout') return missing(id, 'timeout', `no answer within ${this.timeoutMs} ms`);
    if ('error' in outcome) return missing(id, 'error', outcome.error);
    if (outcome.answers.length !== n) {
      return missing(id, 'error', `model returned ${outcome.answers.length} answers for a batch of ${n}`);
    }
    const a = outcome.answers[i]!;
    // A model may claim ok with a value that is not a progress: that is a missing answer, not a number.
    if (a.status === 'ok' && !Number.isFinite(a.progress)) {
      return missing(id, 'parse_error', `model answered ok with progress ${String(a.progress)}`);
    }
    if (a.status !== 'ok') return { ...a, progress: NaN };
    return { ...a, progress: Math.min(1, Math.max(0, a.progress)) };
  }

  private finish(submitted: number, a: Omit<ProgressResponse, 'latencyMs'>): ProgressResponse {
    const latencyMs = performance.now() - submitted;
    this.latencies[this.latencyCount++ % LATENCY_WINDOW] = latencyMs;
    this.counts.answered++;
    this.counts.status[a.status]++;
    return { ...a, latencyMs };
  }
}
