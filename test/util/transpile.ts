/**
 * Transpile src/ to plain JavaScript in a cache folder so a test can run it in
 * a child process (Node 20 cannot run TypeScript itself). Inside node_modules,
 * so bare imports (piscina) resolve as they do for the sources.
 */
import ts from 'typescript';
import { mkdirSync, readFileSync, readdirSync, writeFileSync, copyFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));

export function transpileSources(): string {
  const out = join(root, 'node_modules', '.cache', 'convrnn-transpiled');
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else {
        const target = join(out, relative(root, p));
        mkdirSync(dirname(target), { recursive: true });
        if (p.endsWith('.ts')) {
          const js = ts.transpileModule(readFileSync(p, 'utf8'), {
            compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
          }).outputText;
          writeFileSync(target.replace(/\.ts$/, '.js'), js);
        } else if (p.endsWith('.js')) copyFileSync(p, target);
      }
    }
  };
  walk(join(root, 'src'));
  return out;
}
