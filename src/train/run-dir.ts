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

export class RunDir {
  constructor(readonly path: string) {
    mkdirSync(path, { recursive: true });
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
  get summaryPath(): string {
    return join(this.path, 'summary.json');
  }

  hasCheckpoint(): boolean {
    return existsSync(this.checkpointPath);
  }

  async writeJson(path: string, value: unknown): Promise<void> {
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
