import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import { join } from 'node:path';
import { makeLaunchers, runSync, type Launchers } from './child.js';

let l: Launchers;
beforeAll(() => {
  l = makeLaunchers();
});
afterAll(() => {
  fs.rmSync(l.dir, { recursive: true, force: true });
});

describe('convrnn (in a child process)', () => {
  it('--help prints the commands and exits 0; train --help prints its options and config schema', () => {
    const top = runSync(l.main, ['--help']);
    expect(top.status).toBe(0);
    expect(top.stdout).toMatch(/^Usage: convrnn <command> \[options\]/);
    expect(top.stdout).toMatch(/\n {2}train {5}train a model from a JSON config/);
    expect(top.stderr).toBe('');
    const sub = runSync(l.main, ['train', '--help']);
    expect(sub.status).toBe(0);
    expect(sub.stdout).toMatch(/Usage: convrnn train --config <file\.json> --out <dir>/);
    expect(sub.stdout).toMatch(/--resume <dir>/);
    expect(sub.stdout).toMatch(/clipValue {2}\[0\.7\]/);
    expect(sub.stdout).toMatch(/130 interrupted by Ctrl-C/);
  });

  it('bad usage exits 2 with a message naming the problem', () => {
    const cases: [string[], RegExp][] = [
      [[], /^Usage: convrnn/],
      [['--bogus'], /convrnn: unknown option '--bogus'; a command comes first/],
      [['frobnicate'], /convrnn: unknown command 'frobnicate'; commands: train/],
      [['train', '--bogus'], /convrnn train: unknown option '--bogus'; known options: --config, --out, --resume, --threads, --help/],
      [['train', 'extra'], /convrnn train: unexpected argument 'extra'/],
      [['train', '--out', 'x'], /convrnn train: --config <file> is required \(or --resume <dir>\)/],
      [['train', '--config'], /convrnn train: Option '--config <value>' argument missing/],
      [['train', '--resume', 'a', '--config', 'b'], /--resume <dir> continues a run with its saved config in its own folder; it takes no --config or --out/],
      [['train', '--config', 'c.json', '--out', 'o', '--threads', 'two'], /--threads must be a positive integer, got 'two'/],
      [['train', '--config', join(l.dir, 'missing.json'), '--out', join(l.dir, 'o')], /cannot read the config file .*missing\.json/],
      [['train', '--resume', join(l.dir, 'nowhere')], /holds no checkpoint .*nothing to resume/],
    ];
    for (const [args, re] of cases) {
      const r = runSync(l.main, args);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(re);
      expect(r.stdout, args.join(' ')).toBe('');
    }
  });

  it('a config with an unknown or invalid key exits 2 naming the key path, before any training', () => {
    const file = join(l.dir, 'typo.json');
    fs.writeFileSync(file, JSON.stringify({ model: {}, data: { kind: 'procedural', count: 8 }, optimizer: { kind: 'sgd', momentom: 0.9 } }));
    const r = runSync(l.main, ['train', '--config', file, '--out', join(l.dir, 'typo-run')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/convrnn train: unknown key config\.optimizer\.momentom; allowed keys: kind, lr, momentum, nesterov/);
    expect(fs.existsSync(join(l.dir, 'typo-run'))).toBe(false);
    fs.writeFileSync(file, JSON.stringify({ model: {}, data: { kind: 'procedural', count: 8 }, epochs: -1 }));
    const r2 = runSync(l.main, ['train', '--config', file, '--out', join(l.dir, 'typo-run')]);
    expect(r2.status).toBe(2);
    expect(r2.stderr).toMatch(/config\.epochs must be an integer >= 1, got -1/);
  });
});
