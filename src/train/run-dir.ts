/**
 * A run directory: everything one training run leaves behind.
 *   config.json       the resolved configuration (what `--resume` continues with)
 *   metrics.jsonl     one JSON line per PPO update
 *   checkpoint.pbck   the latest checkpoint (written atomically: a crash leaves the previous one)
 *   policy.onnx       the final policy (docs/onnx-policy.md)
 *   summary.json      the outcome, written at the end
 */
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  openSync,
  closeSync,
  fsyncSync,
  readFileSync,
  truncateSync,
} from 'node:fs';
import { join } from 'node:path';
import { atomicWriteFile } from '../util/atomic-write.ts';
import { InvalidArgument } from '../sim/errors.ts';

export class RunDir {
  /** Nothing is created until the first write, so a run refused before it starts leaves no directory. */
  constructor(readonly path: string) {}

  /**
   * The directory of a new run: `chosen` (`--run-dir`) if given, else `runs/<name>`, numbered so an unnamed
   * run never lands on an earlier one (runs/push-default-s0, runs/push-default-s0-2, ...). Refuses a directory
   * that already holds a run.
   */
  static fresh(name: string, chosen: string | undefined): RunDir {
    let path = chosen ?? join('runs', name);
    for (let k = 2; !chosen && existsSync(path); k++) path = join('runs', `${name}-${k}`);
    const dir = new RunDir(path);
    if (dir.hasCheckpoint()) {
      throw new InvalidArgument(
        '--run-dir',
        `${dir.path} already holds a run; continue it with --resume ${dir.path} or choose another --run-dir`,
      );
    }
    return dir;
  }

  get configPath(): string {
    return join(this.path, 'config.json');
  }
  get metricsPath(): string {
    return join(this.path, 'metrics.jsonl');
  }
  get checkpointPath(): string {
    return join(this.path, 'checkpoint.pbck');
  }
  get policyPath(): string {
    return join(this.path, 'policy.onnx');
  }
  /** The policy of the best evaluation so far (`--eval-every`). */
  get bestPolicyPath(): string {
    return join(this.path, 'policy-best.onnx');
  }
  get summaryPath(): string {
    return join(this.path, 'summary.json');
  }

  hasCheckpoint(): boolean {
    return existsSync(this.checkpointPath);
  }

  async writeJson(path: string, value: unknown): Promise<void> {
    mkdirSync(this.path, { recursive: true });
    await atomicWriteFile(path, JSON.stringify(value, null, 2) + '\n');
  }

  readJson<T>(path: string): T {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  }

  /** Appends one metrics line and syncs it: a killed run keeps every line it reported. */
  appendMetrics(line: object): void {
    appendFileSync(this.metricsPath, JSON.stringify(line) + '\n');
    const fd = openSync(this.metricsPath, 'r+');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  /**
   * On resume, drops metrics lines of updates after the checkpoint (the run repeats them) and a torn last line,
   * so the file reads as if the run had never stopped.
   */
  trimMetrics(keepUpdates: number): void {
    if (!existsSync(this.metricsPath)) return;
    const text = readFileSync(this.metricsPath, 'utf8');
    let keep = 0;
    let offset = 0;
    for (const line of text.split('\n')) {
      if (keep >= keepUpdates || !isJson(line)) break;
      offset += Buffer.byteLength(line) + 1;
      keep++;
    }
    truncateSync(this.metricsPath, offset);
  }
}

function isJson(line: string): boolean {
  try {
    JSON.parse(line);
    return line.length > 0;
  } catch {
    return false;
  }
}
