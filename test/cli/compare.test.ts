import { afterAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { compareCommand } from '../../src/cli/compare.js';
import type { CliIO } from '../../src/cli/io.js';

const dir = fs.mkdtempSync(join(os.tmpdir(), 'convrnn-compare-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function capture(): { io: CliIO; out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return {
    io: { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) } },
    out: () => out,
    err: () => err,
  };
}

describe('convrnn compare', () => {
  it('trains the RGC ConvRNN, its matched feedforward control and its backbone, and saves them side by side', async () => {
    const c = capture();
    const out = join(dir, 'run');
    const code = await compareCommand(['--out', out, '--count', '40', '--epochs', '1', '--size', '8', '--threads', '1'], c.io);
    expect(c.err()).toBe('');
    expect(code).toBe(0);
    const summary = JSON.parse(fs.readFileSync(join(out, 'compare.json'), 'utf8'));
    expect(summary.results.map((r: { model: string }) => r.model)).toEqual(['rgc', 'ff', 'base']);
    const [rgc, ff, base] = summary.results;
    expect(base.params).toBeLessThan(rgc.params); // the same backbone without the cells' gate convs
    // The control is matched in parameters (closest FF Wider width), not in time steps.
    expect(Math.abs(ff.params - rgc.params) / rgc.params).toBeLessThan(0.1);
    expect(rgc.T).toBe(16);
    expect(ff.T).toBeLessThan(rgc.T);
    for (const r of summary.results) {
      expect(r.units).toBeGreaterThan(0);
      expect(r.validationAccuracy).toBeGreaterThanOrEqual(0);
      expect(r.validationAccuracy).toBeLessThanOrEqual(1);
      expect(r.steps).toBe(1); // 36 training images, batch 32, last partial batch dropped
      expect(fs.existsSync(join(out, r.model, 'checkpoint.safetensors'))).toBe(true);
    }
    expect(c.out()).toMatch(/BaseNet-6 \+ RGC cells[^\n]*\n[^\n]*FF Wider[^\n]*\n[^\n]*BaseNet-6 \(no cells\)/);
  }, 120_000);

  it('rejects a bad flag with exit code 2 and names it', async () => {
    const c = capture();
    expect(await compareCommand(['--epochs', 'zero'], c.io)).toBe(2);
    expect(c.err()).toMatch(/--epochs must be an integer >= 1, got 'zero'/);
    const d = capture();
    expect(await compareCommand(['--bogus'], d.io)).toBe(2);
    expect(d.err()).toMatch(/unknown option '--bogus'/);
  });
});
