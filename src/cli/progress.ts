/**
 * Training progress for people. On a terminal: one line redrawn in place
 * (\r, at most ten times a second) with the epoch, step, a bar, the epoch's
 * running loss and accuracy, examples/s and the time left; epoch summaries and
 * checkpoints print as lines of their own. Elsewhere (a file, a pipe): plain
 * lines, about ten per epoch, so logs stay short.
 */
import type { TrainEvent } from '../nn/train.js';
import type { OutStream } from './io.js';

const REDRAW_MS = 100;
const BAR = 30;

/** 42s, 3m05s, 1h02m. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

const pct = (x: number | null): string => (x === null ? '-' : `${(100 * x).toFixed(1)}%`);
const num = (x: number | null): string => (x === null ? '-' : x.toFixed(4));

export class Progress {
  private totalSteps = 0;
  private stepsPerEpoch = 1;
  private epochs = 1;
  private firstStep = 0;
  private every = 1;
  private started = 0;
  private lastDraw = -Infinity;
  private open = false;
  private lossSum = 0;
  private accSum = 0;
  private count = 0;

  constructor(
    private readonly out: OutStream,
    private readonly now: () => number = () => performance.now(),
  ) {}

  private get tty(): boolean {
    return this.out.isTTY === true;
  }

  /** End the redrawn line, so other output starts on a fresh one. */
  clear(): void {
    if (this.open) this.out.write('\r\x1b[K');
    this.open = false;
  }

  private line(text: string): void {
    this.clear();
    this.out.write(`${text}\n`);
  }

  event(e: TrainEvent): void {
    switch (e.type) {
      case 'start': {
        this.totalSteps = e.totalSteps;
        this.stepsPerEpoch = e.stepsPerEpoch;
        this.epochs = e.epochs;
        this.firstStep = e.step;
        this.every = Math.max(1, Math.round(e.stepsPerEpoch / 10));
        this.started = this.now();
        const what = `${e.totalSteps} steps (${e.epochs} epochs of ${e.stepsPerEpoch}), ${e.params} parameters`;
        this.line(e.resumed ? `resuming at step ${e.step} of ${what}` : `training: ${what}`);
        return;
      }
      case 'step': {
        this.lossSum += e.loss;
        this.accSum += e.accuracy;
        this.count++;
        const epochEnd = e.step % this.stepsPerEpoch === 0;
        if (this.tty) {
          const t = this.now();
          if (t - this.lastDraw < REDRAW_MS && !epochEnd && e.step !== this.totalSteps) return;
          this.lastDraw = t;
          // The bar takes what the terminal's width leaves, up to BAR characters.
          const width = (this.out.columns ?? 80) - 1;
          const plain = this.status(e.epoch, e.step, e.examplesPerSec, t);
          const room = Math.min(BAR, width - plain.length - 3);
          const done = Math.round((room * e.step) / Math.max(1, this.totalSteps));
          const text = room >= 5 ? this.status(e.epoch, e.step, e.examplesPerSec, t, `[${'#'.repeat(done)}${'.'.repeat(room - done)}] `) : plain;
          this.out.write(`\r${text.length > width ? text.slice(0, width) : text}\x1b[K`);
          this.open = true;
        } else if (e.step % this.every === 0 || epochEnd || e.step === this.firstStep + 1) {
          this.line(this.status(e.epoch, e.step, e.examplesPerSec, this.now()));
        }
        return;
      }
      case 'epoch':
        this.lossSum = 0;
        this.accSum = 0;
        this.count = 0;
        this.line(
          `epoch ${e.epoch}/${this.epochs} done at step ${e.step}: train loss ${num(e.trainLoss)} accuracy ${pct(e.trainAccuracy)}` +
            (e.validationLoss === null ? '' : `; validation loss ${num(e.validationLoss)} accuracy ${pct(e.validationAccuracy)}`),
        );
        return;
      case 'checkpoint':
        this.line(`checkpoint at step ${e.step}: ${e.path}`);
        return;
      case 'stopped':
      case 'done':
        this.clear();
        return;
    }
  }

  private status(epoch: number, step: number, examplesPerSec: number, t: number, bar = ''): string {
    const elapsed = (t - this.started) / 1000;
    const stepsDone = step - this.firstStep;
    const eta = stepsDone > 0 && elapsed > 0 ? ((this.totalSteps - step) * elapsed) / stepsDone : NaN;
    const loss = this.count > 0 ? this.lossSum / this.count : null;
    const acc = this.count > 0 ? this.accSum / this.count : null;
    return `epoch ${epoch}/${this.epochs} step ${step}/${this.totalSteps} ${bar}loss ${num(loss)} accuracy ${pct(acc)} ${examplesPerSec.toFixed(1)} ex/s ETA ${formatDuration(eta)}`;
  }
}
