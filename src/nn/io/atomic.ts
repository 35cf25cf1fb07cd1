/**
 * Atomic file writes: data goes to a temporary file in the target's directory,
 * is flushed to disk, and is then renamed over the target, so a reader sees
 * either the old file or the complete new one, never a partial write.
 */
// The default import (not `import * as`) is deliberate: it is the mutable
// module object, so tests can make single calls fail with vi.spyOn.
import fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join, resolve } from 'node:path';
import { ValueError, describe } from '../../tensor/errors.js';

type FileData = Uint8Array | string;

function checkPath(fn: string, arg: string, path: unknown): asserts path is string {
  if (typeof path !== 'string' || path.length === 0) {
    throw new ValueError(`${fn}: ${arg} must be a non-empty string, got ${describe(path)}`);
  }
}

function checkData(fn: string, arg: string, data: unknown): asserts data is FileData {
  if (!(data instanceof Uint8Array) && typeof data !== 'string') {
    throw new ValueError(`${fn}: ${arg} must be a Uint8Array or a string, got ${describe(data)}`);
  }
}

function tempPathFor(target: string): string {
  const suffix = randomBytes(6).toString('hex');
  return join(dirname(target), `.${basename(target)}.${process.pid}.${suffix}.tmp`);
}

/** Write `data` to a new file at `tmp` and flush it to disk. Removes `tmp` and rethrows on failure. */
function writeTemp(tmp: string, data: FileData): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(tmp, 'wx');
    fs.writeFileSync(fd, data);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
  } catch (err) {
    if (fd !== undefined) closeQuietly(fd);
    removeQuietly(tmp);
    throw err;
  }
}

function closeQuietly(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    // The original error is the one worth reporting.
  }
}

function removeQuietly(path: string): void {
  try {
    fs.unlinkSync(path);
  } catch {
    // Already gone, or never created.
  }
}

/**
 * Flush a directory so a rename inside it survives a crash. Some platforms and
 * file systems cannot open or fsync a directory (Windows: EISDIR/EPERM, some
 * network file systems: EINVAL); the rename itself has happened, so skip there.
 */
function fsyncDirectory(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EISDIR' && code !== 'EPERM' && code !== 'EINVAL') throw err;
  } finally {
    if (fd !== undefined) closeQuietly(fd);
  }
}

/**
 * Replace the file at `path` with `data` atomically. On any failure the
 * temporary file is removed, the previous file (if any) is left as it was, and
 * the error is rethrown.
 */
export function writeFileAtomic(path: string, data: Uint8Array | string): void {
  checkPath('writeFileAtomic', 'path', path);
  checkData('writeFileAtomic', 'data', data);
  const target = resolve(path);
  const tmp = tempPathFor(target);
  writeTemp(tmp, data);
  try {
    fs.renameSync(tmp, target);
  } catch (err) {
    removeQuietly(tmp);
    throw err;
  }
  fsyncDirectory(dirname(target));
}

/**
 * Write several files (for example weights plus a JSON sidecar) so that no
 * target is touched unless every file's data reached the disk: all temporary
 * files are written and flushed first, then renamed one after another in the
 * order given. The renames are not one atomic step: a crash between them leaves
 * the earlier targets new and the later ones old. Put the file whose presence
 * marks the set as complete (usually the JSON sidecar) LAST, so it is renamed
 * after everything it describes. If writing any temporary file fails, all
 * temporaries are removed and no target changes; if a rename fails, the
 * remaining temporaries are removed and the targets renamed before it stay new.
 */
export function writeFilesAtomic(entries: Array<[path: string, data: Uint8Array | string]>): void {
  if (!Array.isArray(entries)) {
    throw new ValueError(`writeFilesAtomic: entries must be an array of [path, data] pairs, got ${describe(entries)}`);
  }
  const targets: string[] = [];
  entries.forEach((entry, i) => {
    if (!Array.isArray(entry) || entry.length !== 2) {
      throw new ValueError(`writeFilesAtomic: entries[${i}] must be a [path, data] pair, got ${describe(entry)}`);
    }
    checkPath('writeFilesAtomic', `entries[${i}][0]`, entry[0]);
    checkData('writeFilesAtomic', `entries[${i}][1]`, entry[1]);
    const target = resolve(entry[0]);
    const previous = targets.indexOf(target);
    if (previous >= 0) {
      throw new ValueError(`writeFilesAtomic: entries[${i}] and entries[${previous}] both write ${describe(target)}; paths must be distinct`);
    }
    targets.push(target);
  });

  const temps: string[] = [];
  try {
    targets.forEach((target, i) => {
      const tmp = tempPathFor(target);
      writeTemp(tmp, entries[i][1]);
      temps.push(tmp);
    });
  } catch (err) {
    temps.forEach(removeQuietly);
    throw err;
  }

  for (let i = 0; i < targets.length; i++) {
    try {
      fs.renameSync(temps[i], targets[i]);
    } catch (err) {
      temps.slice(i).forEach(removeQuietly);
      throw err;
    }
  }
  for (const dir of new Set(targets.map((t) => dirname(t)))) fsyncDirectory(dir);
}
