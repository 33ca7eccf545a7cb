// Lint configuration: typescript-eslint's recommended rules over the TypeScript sources.
// AssemblyScript kernels (src/kernels/wasm/assembly) use AS-only types and builtins and are
// checked by the AssemblyScript compiler instead.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'src/kernels/wasm/assembly/**', 'docs/api/**', 'qlora-demo/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  { languageOptions: { globals: { ...globals.node } } },
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
);
