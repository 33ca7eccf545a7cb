// Builds the AssemblyScript kernels into three WebAssembly modules:
//   dist/wasm/kernels-simd.wasm     SIMD128 (runs on every Node >= 20)
//   dist/wasm/kernels-relaxed.wasm  SIMD128 + relaxed SIMD (FMA, relaxed swizzle), chosen at
//                                   start-up when the runtime validates it.
//   dist/wasm/kernels-relaxed-fused.wasm  the same with the fused int8 dot (FUSED_I8_DOT=1),
//                                   chosen where the start-up probe finds that instruction exact
//                                   and faster than the split form.
// and the probe that times the two dot forms (dist/wasm/probe-dot-speed.wasm, its own memory;
// source src/kernels/wasm/assembly/probe-dot-speed.ts, not part of index.ts).
// Both import one shared WebAssembly.Memory so a worker-thread pool can run them over the same
// tensors. Sources: src/kernels/wasm/assembly/. Nothing here is committed as a binary.
import { execFileSync } from 'node:child_process';
import { mkdirSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const entry = join(root, 'src/kernels/wasm/assembly/index.ts');
const outDir = join(root, 'dist/wasm');
mkdirSync(outDir, { recursive: true });
const require = createRequire(import.meta.url);
const asc = join(dirname(require.resolve('assemblyscript/package.json')), 'bin/asc.js');

const common = [
  entry,
  '--optimizeLevel', '3', '--shrinkLevel', '0', '--noAssert',
  '--runtime', 'stub',
  '--importMemory', '--sharedMemory', '--initialMemory', '32', '--maximumMemory', '65536',
  '--exportRuntime',
];
const variants = [
  { file: 'kernels-simd.wasm', features: 'simd,threads', fusedDot: 0 },
  { file: 'kernels-relaxed.wasm', features: 'simd,threads,relaxed-simd', fusedDot: 0 },
  { file: 'kernels-relaxed-fused.wasm', features: 'simd,threads,relaxed-simd', fusedDot: 1 },
];
if (!existsSync(entry)) throw new Error(`build-wasm: missing kernel entry ${entry}`);
for (const v of variants) {
  const out = join(outDir, v.file);
  execFileSync(process.execPath, [asc, ...common, '--enable', v.features, '--use', `FUSED_I8_DOT=${v.fusedDot}`, '--outFile', out], {
    stdio: 'inherit',
  });
  console.log(`build-wasm: wrote ${out}`);
}
const probe = join(outDir, 'probe-dot-speed.wasm');
execFileSync(process.execPath, [asc, join(root, 'src/kernels/wasm/assembly/probe-dot-speed.ts'), '--optimizeLevel', '3', '--shrinkLevel', '0', '--noAssert', '--runtime', 'stub',
  '--initialMemory', '1', '--enable', 'simd,relaxed-simd', '--outFile', probe], { stdio: 'inherit' });
console.log(`build-wasm: wrote ${probe}`);
