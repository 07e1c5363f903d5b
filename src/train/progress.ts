/**
 * Terminal progress display for training.
 *
 * - TTY stream: one line redrawn in place with `\r` (and clear-to-end-of-line), at most every
 *   `redrawMs`; {@link ProgressBar.finish} ends it with a newline.
 * - Non-TTY stream (log file, CI): a plain line every `lineIntervalMs` (and at the end).
 * - `quiet`: nothing is written.
 *
 * Shown: updates done/total, percentage, loss, lr, tokens/s (since start) and ETA.
 */

/** The subset of a writable stream the bar uses (`process.stderr`, a file stream, a test sink). */
export interface ProgressStream {
  /** Write a string. */
  write(s: string): unknown;
  /** True for an interactive terminal. */
  isTTY?: boolean;
  /** Terminal width in columns, when known. */
  columns?: number;
}

/** Options of {@link ProgressBar}. */
export interface ProgressOptions {
  /** Total number of updates (> 0). */
  total: number;
  /** Output stream (default `process.stderr`). */
  stream?: ProgressStream;
  /** Write nothing at all. */
  quiet?: boolean;
  /** Text before the bar (e.g. `epoch 3`). */
  label?: string;
  /** Minimum time between TTY redraws in ms (default 100). */
  redrawMs?: number;
  /** Time between plain lines on a non-TTY in ms (default 10 000). */
  lineIntervalMs?: number;
  /** Bar width in characters (default 24). */
  barWidth?: number;
  /** Clock in ms (default `Date.now`); injectable for tests. */
  now?: () => number;
}

/** Metrics of one {@link ProgressBar.update} call. */
export interface ProgressMetrics {
  /** Current loss. */
  loss?: number;
  /** Current learning rate. */
  lr?: number;
  /** Tokens processed by this update (accumulated for tokens/s). */
  tokens?: number;
}

/** `90` → `1m30s`, `3725` → `1h02m05s`; `--` for a non-finite value. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  const pad = (x: number): string => String(x).padStart(2, '0');
  if (h > 0) return `${h}h${pad(m)}m${pad(sec)}s`;
  if (m > 0) return `${m}m${pad(sec)}s`;
  return `${sec}s`;
}

/** Compact rate: `950`, `12.3k`, `4.56M`. */
export function formatRate(x: number): string {
  if (!Number.isFinite(x)) return '--';
  if (x >= 1e6) return `${(x / 1e6).toFixed(2)}M`;
  if (x >= 1e3) return `${(x / 1e3).toFixed(1)}k`;
  return x.toFixed(0);
}

/** Progress bar / periodic progress lines (see the module comment). */
export class ProgressBar {
  private readonly total: number;
  private readonly stream: ProgressStream;
  private readonly quiet: boolean;
  private readonly tty: boolean;
  private readonly now: () => number;
  private readonly start: number;
  private readonly opts: ProgressOptions;
  private done = 0;
  private tokens = 0;
  private metrics: ProgressMetrics = {};
  private lastWrite = -Infinity;
  private finished = false;

  /** @param opts total, stream, quiet, label, timings, clock */
  constructor(opts: ProgressOptions) {
    if (!(Number.isInteger(opts.total) && opts.total > 0)) {
      throw new RangeError(`ProgressBar total = ${opts.total}: expected an integer > 0`);
    }
    this.opts = opts;
    this.total = opts.total;
    this.stream = opts.stream ?? process.stderr;
    this.quiet = opts.quiet ?? false;
    this.tty = this.stream.isTTY === true;
    this.now = opts.now ?? Date.now;
    this.start = this.now();
  }

  /**
   * Record progress: `done` updates completed so far (absolute) and the latest metrics.
   * Writes when the redraw / line interval has elapsed.
   */
  update(done: number, metrics: ProgressMetrics = {}): void {
    this.done = Math.min(done, this.total);
    this.tokens += metrics.tokens ?? 0;
    this.metrics = { ...this.metrics, ...metrics };
    if (this.quiet || this.finished) return;
    const t = this.now();
    const interval = this.tty ? (this.opts.redrawMs ?? 100) : (this.opts.lineIntervalMs ?? 10000);
    if (t - this.lastWrite >= interval) this.write(t);
  }

  /** Write the final state (always) and end the line; later calls do nothing. */
  finish(): void {
    if (this.quiet || this.finished) return;
    this.write(this.now());
    if (this.tty) this.stream.write('\n');
    this.finished = true;
  }

  /** The status text for the current state (without bar or line control characters). */
  status(t = this.now()): string {
    const elapsed = (t - this.start) / 1000;
    const pct = ((100 * this.done) / this.total).toFixed(0).padStart(3);
    const parts = [`${this.done}/${this.total} (${pct}%)`];
    const { loss, lr } = this.metrics;
    if (loss !== undefined) parts.push(`loss ${loss.toFixed(4)}`);
    if (lr !== undefined) parts.push(`lr ${lr.toExponential(2)}`);
    if (this.tokens > 0 && elapsed > 0) parts.push(`${formatRate(this.tokens / elapsed)} tok/s`);
    const eta = this.done > 0 ? (elapsed / this.done) * (this.total - this.done) : NaN;
    parts.push(`ETA ${formatDuration(eta)}`);
    return parts.join(' | ');
  }

  private write(t: number): void {
    this.lastWrite = t;
    const label = this.opts.label ? `${this.opts.label} ` : '';
    if (!this.tty) {
      this.stream.write(`${label}${this.status(t)}\n`);
      return;
    }
    const w = this.opts.barWidth ?? 24;
    const filled = Math.round((w * this.done) / this.total);
    let line = `${label}[${'#'.repeat(filled)}${'.'.repeat(w - filled)}] ${this.status(t)}`;
    const cols = this.stream.columns;
    if (cols && line.length > cols - 1) line = line.slice(0, cols - 1);
    this.stream.write(`\r${line}\x1b[K`);
  }
}
