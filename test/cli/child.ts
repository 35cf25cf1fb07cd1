/**
 * Running the CLI in a child process: src/ transpiled to JavaScript (see
 * test/util/transpile.ts), plus two launchers in a temporary folder: `main`
 * (the `convrnn` command as bin/convrnn.js runs it) and `tiny` (`convrnn
 * train` with the test model of test/nn/tiny-model.ts as its buildModel).
 */
import ts from 'typescript';
import fs from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { transpileSources } from '../util/transpile.js';
import { kernelsPath } from '../../src/tensor/kernels.js';

export interface Launchers {
  dir: string;
  main: string;
  tiny: string;
}

export function makeLaunchers(): Launchers {
  const out = transpileSources();
  const helper = fileURLToPath(new URL('../nn/tiny-model.ts', import.meta.url));
  const target = join(out, 'test', 'nn', 'tiny-model.js');
  fs.mkdirSync(dirname(target), { recursive: true });
  const js = ts.transpileModule(fs.readFileSync(helper, 'utf8'), { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
  fs.writeFileSync(target, js);

  const dir = fs.mkdtempSync(join(os.tmpdir(), 'convrnn-cli-'));
  const at = (p: string) => JSON.stringify(join(out, p));
  const main = join(dir, 'main.mjs');
  fs.writeFileSync(main, `import { main } from ${at('src/cli/main.js')};\nprocess.exitCode = await main(process.argv.slice(2));\n`);
  const tiny = join(dir, 'tiny.mjs');
  fs.writeFileSync(
    tiny,
    `import { trainCommand } from ${at('src/cli/train.js')};\n` +
      `import { processIO } from ${at('src/cli/io.js')};\n` +
      `import { tinyModel } from ${at('test/nn/tiny-model.js')};\n` +
      `process.exitCode = await trainCommand(process.argv.slice(2), processIO(), { buildModel: tinyModel });\n`,
  );
  return { dir, main, tiny };
}

const env = () => ({ ...process.env, CONVRNN_WASM: kernelsPath, CONVRNN_THREADS: '1' });

export function runSync(script: string, args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [script, ...args], { encoding: 'utf8', timeout: 30_000, env: env() });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

export function start(script: string, args: string[]): { child: ChildProcess; done: Promise<{ status: number | null; signal: string | null; stdout: string; stderr: string }> } {
  const child = spawn(process.execPath, [script, ...args], { env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const done = new Promise<{ status: number | null; signal: string | null; stdout: string; stderr: string }>((resolve) => {
    child.on('close', (status, signal) => resolve({ status, signal, stdout, stderr }));
  });
  return { child, done };
}
