/**
 * A one-line progress bar on a terminal (stderr), plain periodic lines otherwise, nothing at all with --json
 * so stdout stays machine-readable.
 */
export class Progress {
  private readonly tty: boolean;
  private lastPlain = 0;
  private readonly start = performance.now();

  constructor(
    private readonly total: number,
    private readonly label: string,
    private readonly enabled: boolean,
  ) {
    this.tty = Boolean(process.stderr.isTTY);
  }

  update(done: number, extra: string): void {
    if (!this.enabled) return;
    const elapsed = (performance.now() - this.start) / 1000;
    const frac = this.total > 0 ? done / this.total : 1;
    const eta = frac > 0 ? elapsed * (1 / frac - 1) : 0;
    if (this.tty) {
      const width = 24;
      const filled = Math.round(frac * width);
      const bar = '#'.repeat(filled) + '-'.repeat(width - filled);
      process.stderr.write(`\r${this.label} [${bar}] ${done}/${this.total} ${extra} eta ${eta.toFixed(0)}s `);
    } else if (elapsed - this.lastPlain >= 5 || done === this.total) {
      this.lastPlain = elapsed;
      process.stderr.write(`${this.label} ${done}/${this.total} ${extra}\n`);
    }
  }

  finish(): void {
    if (this.enabled && this.tty) process.stderr.write('\n');
  }
}

/** Seconds as `12s` or `3m05s`; `?` when unknown. */
export function formatDuration(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const m = Math.floor(s / 60);
  return m > 0 ? `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${s.toFixed(0)}s`;
}

/**
 * Ctrl-C, or SIGTERM (what `kill`, `docker stop` and a cluster's preemption send), asks a training run to stop
 * after its current update, keeping a checkpoint; a second signal quits at once. `dispose` removes the handlers
 * when the run is over.
 */
export function stopOnSignal(log: ((line: string) => void) | undefined): {
  requested: () => boolean;
  dispose: () => void;
} {
  let requested = false;
  const on = (signal: NodeJS.Signals): void => {
    if (requested) process.exit(signal === 'SIGTERM' ? 143 : 130);
    requested = true;
    const again = signal === 'SIGTERM' ? 'a second SIGTERM' : 'Ctrl-C again';
    log?.(`\nstopping after this update (checkpoint kept); ${again} to quit at once\n`);
  };
  process.on('SIGINT', on);
  process.on('SIGTERM', on);
  return {
    requested: () => requested,
    dispose: () => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
    },
  };
}
