import { describe, expect, it } from 'vitest';
import { Progress, formatDuration } from '../../src/cli/progress.js';
import type { TrainEvent } from '../../src/nn/train.js';

function sink(isTTY: boolean) {
  const chunks: string[] = [];
  return { out: { isTTY, columns: 120, write: (s: string) => chunks.push(s) }, chunks };
}

/** A run of 2 epochs x 20 steps, one step per simulated second. */
function feed(p: Progress, clock: { t: number }): void {
  const events: TrainEvent[] = [{ type: 'start', step: 0, totalSteps: 40, stepsPerEpoch: 20, epochs: 2, params: 1234, resumed: false }];
  for (let step = 1; step <= 40; step++) {
    const epoch = step <= 20 ? 1 : 2;
    events.push({ type: 'step', epoch, step, loss: 1 / step, accuracy: 0.5, lr: 0.01, gradNorm: 1, examplesPerSec: 32 });
    if (step % 20 === 0) events.push({ type: 'epoch', epoch, step, trainLoss: 0.5, trainAccuracy: 0.625, validationLoss: step === 20 ? 0.75 : null, validationAccuracy: step === 20 ? 0.5 : null });
    if (step === 30) events.push({ type: 'checkpoint', step, path: '/runs/a/checkpoint.safetensors' });
  }
  events.push({ type: 'done', step: 40 });
  for (const e of events) {
    if (e.type === 'step') clock.t += 1000;
    p.event(e);
  }
}

describe('progress', () => {
  it('formats durations', () => {
    expect([0, 42, 60, 185, 3599, 3600, 7380].map(formatDuration)).toEqual(['0s', '42s', '1m00s', '3m05s', '59m59s', '1h00m', '2h03m']);
    expect(formatDuration(NaN)).toBe('?');
  });

  it('plain lines when not a terminal: about ten per epoch, epoch summaries, checkpoints; no carriage returns', () => {
    const { out, chunks } = sink(false);
    const clock = { t: 0 };
    feed(new Progress(out, () => clock.t), clock);
    const text = chunks.join('');
    expect(text).not.toContain('\r');
    const lines = text.trimEnd().split('\n');
    expect(lines[0]).toBe('training: 40 steps (2 epochs of 20), 1234 parameters');
    const stepLines = lines.filter((l) => /^epoch \d\/2 step/.test(l));
    // steps 1, then every 2nd
    expect(stepLines.length).toBe(21);
    expect(stepLines[0]).toBe('epoch 1/2 step 1/40 loss 1.0000 accuracy 50.0% 32.0 ex/s ETA 39s');
    expect(lines).toContain('epoch 1/2 done at step 20: train loss 0.5000 accuracy 62.5%; validation loss 0.7500 accuracy 50.0%');
    expect(lines).toContain('epoch 2/2 done at step 40: train loss 0.5000 accuracy 62.5%');
    expect(lines).toContain('checkpoint at step 30: /runs/a/checkpoint.safetensors');
    // Step 21 starts the epoch's running mean afresh.
    expect(lines.find((l) => l.startsWith('epoch 2/2 step 22/40'))).toBe(`epoch 2/2 step 22/40 loss ${((1 / 21 + 1 / 22) / 2).toFixed(4)} accuracy 50.0% 32.0 ex/s ETA 18s`);
  });

  it('on a terminal: one line redrawn with \\r and a bar; summaries on lines of their own; the line is closed at the end', () => {
    const { out, chunks } = sink(true);
    const clock = { t: 0 };
    feed(new Progress(out, () => clock.t), clock);
    const redraws = chunks.filter((c) => c.startsWith('\r') && c.includes('step'));
    expect(redraws.length).toBe(40);
    expect(redraws[9]).toBe(`\repoch 1/2 step 10/40 [${'#'.repeat(8)}${'.'.repeat(22)}] loss 0.2929 accuracy 50.0% 32.0 ex/s ETA 30s\x1b[K`);
    expect(chunks.join('')).toContain('\r\x1b[Kepoch 1/2 done at step 20');
    expect(chunks.join('').endsWith('epoch 2/2 done at step 40: train loss 0.5000 accuracy 62.5%\n')).toBe(true);
    // A run stopped mid-epoch: 'stopped' erases the half-drawn line.
    const p = new Progress(out, () => clock.t);
    p.event({ type: 'start', step: 0, totalSteps: 40, stepsPerEpoch: 20, epochs: 2, params: 1, resumed: false });
    p.event({ type: 'step', epoch: 1, step: 1, loss: 1, accuracy: 1, lr: 1, gradNorm: 1, examplesPerSec: 1 });
    p.event({ type: 'stopped', step: 1, reason: 'aborted', message: '' });
    expect(chunks.at(-1)).toBe('\r\x1b[K');
  });

  it('on a terminal, the bar shrinks to fit the width, and goes when there is no room', () => {
    const line = (columns: number) => {
      const chunks: string[] = [];
      const p = new Progress({ isTTY: true, columns, write: (s: string) => chunks.push(s) }, () => 0);
      p.event({ type: 'start', step: 0, totalSteps: 40, stepsPerEpoch: 20, epochs: 2, params: 1, resumed: false });
      p.event({ type: 'step', epoch: 1, step: 10, loss: 0.5, accuracy: 0.5, lr: 1, gradNorm: 1, examplesPerSec: 32 });
      return chunks.at(-1)!;
    };
    const plain = 'epoch 1/2 step 10/40 loss 0.5000 accuracy 50.0% 32.0 ex/s ETA ?';
    expect(plain.length + '[###..........] '.length).toBe(79); // fills the 80-column line but its last cell
    expect(line(80)).toBe(`\r${plain.replace('loss', '[###..........] loss')}\x1b[K`);
    expect(line(70)).toBe(`\r${plain}\x1b[K`);
    expect(line(40)).toBe(`\r${plain.slice(0, 39)}\x1b[K`);
  });

  it('on a terminal, redraws at most every 100 ms (but always at an epoch end)', () => {
    const { out, chunks } = sink(true);
    const p = new Progress(out, () => 0);
    p.event({ type: 'start', step: 0, totalSteps: 10, stepsPerEpoch: 5, epochs: 2, params: 1, resumed: false });
    for (let step = 1; step <= 5; step++) p.event({ type: 'step', epoch: 1, step, loss: 1, accuracy: 1, lr: 1, gradNorm: 1, examplesPerSec: 1 });
    expect(chunks.filter((c) => c.startsWith('\repoch')).map((c) => /step (\d+)/.exec(c)![1])).toEqual(['1', '5']);
  });
});
