/** Small line plots on a 2D canvas: a few series, auto or fixed y range, redrawn only when data changed. */

export interface Series {
  color: string;
  xs: number[];
  ys: number[];
}

export class LinePlot {
  readonly series: Series[];
  private dirty = true;
  /** Points added since the plot was created (tests watch this advance). */
  points = 0;

  constructor(
    private readonly canvas: HTMLCanvasElement,
    colors: string[],
    private readonly yRange?: [number, number],
    private readonly maxPoints = 5000,
  ) {
    this.series = colors.map((color) => ({ color, xs: [], ys: [] }));
  }

  clear(): void {
    for (const s of this.series) {
      s.xs.length = 0;
      s.ys.length = 0;
    }
    this.dirty = true;
  }

  push(series: number, x: number, y: number): void {
    const s = this.series[series]!;
    s.xs.push(x);
    s.ys.push(y);
    if (s.xs.length > this.maxPoints) {
      s.xs.splice(0, s.xs.length - this.maxPoints);
      s.ys.splice(0, s.ys.length - this.maxPoints);
    }
    this.points++;
    this.dirty = true;
  }

  draw(): void {
    if (!this.dirty) return;
    this.dirty = false;
    const c = this.canvas;
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(c.clientWidth * dpr));
    const h = Math.max(1, Math.round(c.clientHeight * dpr));
    if (c.width !== w || c.height !== h) {
      c.width = w;
      c.height = h;
    }
    const g = c.getContext('2d')!;
    g.clearRect(0, 0, w, h);
    let x0 = Infinity;
    let x1 = -Infinity;
    let y0 = this.yRange?.[0] ?? Infinity;
    let y1 = this.yRange?.[1] ?? -Infinity;
    for (const s of this.series) {
      for (let i = 0; i < s.xs.length; i++) {
        x0 = Math.min(x0, s.xs[i]!);
        x1 = Math.max(x1, s.xs[i]!);
        if (!this.yRange) {
          y0 = Math.min(y0, s.ys[i]!);
          y1 = Math.max(y1, s.ys[i]!);
        }
      }
    }
    if (!Number.isFinite(x0)) return;
    if (x1 === x0) x1 = x0 + 1;
    if (!(y1 > y0)) {
      y0 -= 0.5;
      y1 += 0.5;
    }
    const pad = 4 * dpr;
    const sx = (x: number): number => pad + ((x - x0) / (x1 - x0)) * (w - 2 * pad);
    const sy = (y: number): number => h - pad - ((y - y0) / (y1 - y0)) * (h - 2 * pad);
    g.strokeStyle = '#2a2e37';
    g.lineWidth = 1;
    if (y0 < 0 && y1 > 0) {
      g.beginPath();
      g.moveTo(pad, sy(0));
      g.lineTo(w - pad, sy(0));
      g.stroke();
    }
    g.lineWidth = 1.5 * dpr;
    for (const s of this.series) {
      if (s.xs.length === 0) continue;
      g.strokeStyle = s.color;
      g.beginPath();
      g.moveTo(sx(s.xs[0]!), sy(s.ys[0]!));
      for (let i = 1; i < s.xs.length; i++) g.lineTo(sx(s.xs[i]!), sy(s.ys[i]!));
      g.stroke();
    }
    g.fillStyle = '#8a92a3';
    g.font = `${10 * dpr}px system-ui`;
    g.fillText(fmt(y1), pad + 2, pad + 10 * dpr);
    g.fillText(fmt(y0), pad + 2, h - pad - 2);
  }
}

function fmt(v: number): string {
  return Math.abs(v) >= 100 || v === 0 ? v.toFixed(0) : v.toPrecision(3);
}
