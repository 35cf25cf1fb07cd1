import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import { basename, dirname, join } from 'node:path';
import { writeFileAtomic, writeFilesAtomic } from '../../../src/nn/io/atomic.js';
import { ValueError } from '../../../src/tensor/errors.js';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(join(os.tmpdir(), 'atomic-test-'));
});
afterEach(() => {
  vi.restoreAllMocks();
  fs.rmSync(dir, { recursive: true, force: true });
});

function failWith(code: string): Error {
  return Object.assign(new Error(`simulated ${code}`), { code });
}

describe('writeFileAtomic', () => {
  it('creates a file and replaces a longer existing one completely', () => {
    const path = join(dir, 'a.bin');
    writeFileAtomic(path, new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]));
    expect([...fs.readFileSync(path)]).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    writeFileAtomic(path, 'hi');
    expect(fs.readFileSync(path, 'utf8')).toBe('hi');
    expect(fs.readdirSync(dir)).toEqual(['a.bin']);
  });

  it('writes through a temporary file in the same directory named with the pid', () => {
    const path = join(dir, 'w.json');
    const rename = vi.spyOn(fs, 'renameSync');
    writeFileAtomic(path, '{}');
    expect(rename).toHaveBeenCalledTimes(1);
    const [from, to] = rename.mock.calls[0] as [string, string];
    expect(to).toBe(path);
    expect(dirname(from)).toBe(dir);
    expect(basename(from)).toContain(String(process.pid));
    expect(basename(from)).not.toBe('w.json');
  });

  it('throws for a path in a directory that does not exist and creates nothing', () => {
    const missing = join(dir, 'no-such-dir', 'x.bin');
    expect(() => writeFileAtomic(missing, 'x')).toThrow(/ENOENT/);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it.each(['writeFileSync', 'fsyncSync', 'renameSync'] as const)('a failure in %s leaves the original untouched and no temporary file', (method) => {
    const path = join(dir, 'keep.txt');
    fs.writeFileSync(path, 'original');
    vi.spyOn(fs, method).mockImplementationOnce(() => {
      throw failWith('EIO');
    });
    expect(() => writeFileAtomic(path, 'replacement that must not appear')).toThrow(/simulated EIO/);
    expect(fs.readFileSync(path, 'utf8')).toBe('original');
    expect(fs.readdirSync(dir)).toEqual(['keep.txt']);
  });

  it('ignores EISDIR/EPERM from the directory fsync but reports other errors after the file is in place', () => {
    const path = join(dir, 'd.txt');
    const realOpen = fs.openSync;
    const open = vi.spyOn(fs, 'openSync');
    const failOpeningDir = (code: string) =>
      ((p: fs.PathLike, flags: fs.OpenMode, mode?: fs.Mode | null) => {
        if (p === dir) throw failWith(code);
        return realOpen(p, flags, mode);
      }) as typeof fs.openSync;
    open.mockImplementation(failOpeningDir('EPERM'));
    writeFileAtomic(path, 'one');
    expect(fs.readFileSync(path, 'utf8')).toBe('one');
    open.mockImplementation(failOpeningDir('EISDIR'));
    writeFileAtomic(path, 'two');
    expect(fs.readFileSync(path, 'utf8')).toBe('two');

    open.mockImplementation(failOpeningDir('EIO'));
    expect(() => writeFileAtomic(path, 'three')).toThrow(/simulated EIO/);
    expect(fs.readFileSync(path, 'utf8')).toBe('three');
    expect(fs.readdirSync(dir)).toEqual(['d.txt']);
  });

  it('rejects bad arguments with ValueError naming them', () => {
    expect(() => writeFileAtomic('', 'x')).toThrow(ValueError);
    expect(() => writeFileAtomic('', 'x')).toThrow(/path must be a non-empty string, got ""/);
    expect(() => writeFileAtomic(join(dir, 'x'), 42 as unknown as string)).toThrow(/data must be a Uint8Array or a string, got 42/);
    expect(() => writeFileAtomic(join(dir, 'x'), [1, 2] as unknown as Uint8Array)).toThrow(ValueError);
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});

describe('writeFilesAtomic', () => {
  it('writes every file, renaming in the order given so the last entry lands last', () => {
    const weights = join(dir, 'model.safetensors');
    const sidecar = join(dir, 'model.json');
    fs.writeFileSync(weights, 'old weights');
    const rename = vi.spyOn(fs, 'renameSync');
    writeFilesAtomic([
      [weights, new Uint8Array([9, 8, 7])],
      [sidecar, '{"ok":true}'],
    ]);
    expect([...fs.readFileSync(weights)]).toEqual([9, 8, 7]);
    expect(fs.readFileSync(sidecar, 'utf8')).toBe('{"ok":true}');
    expect(rename.mock.calls.map((c) => c[1])).toEqual([weights, sidecar]);
    expect(fs.readdirSync(dir).sort()).toEqual(['model.json', 'model.safetensors']);
  });

  it('touches no target when a later temporary file cannot be written, and removes the earlier temporaries', () => {
    const first = join(dir, 'first.bin');
    fs.writeFileSync(first, 'first original');
    expect(() =>
      writeFilesAtomic([
        [first, 'new first'],
        [join(dir, 'missing', 'second.json'), 'new second'],
      ]),
    ).toThrow(/ENOENT/);
    expect(fs.readFileSync(first, 'utf8')).toBe('first original');
    expect(fs.readdirSync(dir)).toEqual(['first.bin']);
  });

  it('when the second rename fails the first target is new, the second untouched, and no temporary remains', () => {
    const a = join(dir, 'a.bin');
    const b = join(dir, 'b.json');
    fs.writeFileSync(a, 'old a');
    fs.writeFileSync(b, 'old b');
    const realRename = fs.renameSync;
    let calls = 0;
    vi.spyOn(fs, 'renameSync').mockImplementation((from, to) => {
      if (++calls === 2) throw failWith('EIO');
      realRename(from, to);
    });
    expect(() => writeFilesAtomic([[a, 'new a'], [b, 'new b']])).toThrow(/simulated EIO/);
    expect(fs.readFileSync(a, 'utf8')).toBe('new a');
    expect(fs.readFileSync(b, 'utf8')).toBe('old b');
    expect(fs.readdirSync(dir).sort()).toEqual(['a.bin', 'b.json']);
  });

  it('rejects malformed entries and duplicate targets before writing anything', () => {
    const p = join(dir, 'p');
    expect(() => writeFilesAtomic('nope' as unknown as [string, string][])).toThrow(/entries must be an array/);
    expect(() => writeFilesAtomic([[p] as unknown as [string, string]])).toThrow(/entries\[0\] must be a \[path, data\] pair/);
    expect(() => writeFilesAtomic([[p, 'x'], [p, 3 as unknown as string]])).toThrow(/entries\[1\]\[1\] must be a Uint8Array or a string, got 3/);
    expect(() => writeFilesAtomic([[p, 'x'], [join(dir, '.', 'p'), 'y']])).toThrow(/entries\[1\] and entries\[0\] both write/);
    expect(() => writeFilesAtomic([[p, 'x'], [p, 'y']])).toThrow(ValueError);
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});
