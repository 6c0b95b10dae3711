// ESLint (flat config, typescript-eslint), run by `npm test`: the house rules a reader should not
// have to check by eye. No console outside src/ui/ (the only code that prints); no import that
// points up a floor of floors.json (test/unit/architecture.test.ts checks the same graph exactly).
import { readFileSync } from 'node:fs';
import tseslint from 'typescript-eslint';

const { floors } = JSON.parse(readFileSync(new URL('./floors.json', import.meta.url), 'utf8'));
const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** A relative specifier that reaches a folder or top-level file of src/. */
const reaching = (name) => (name.endsWith('.ts') ? `^(\\.\\./)+${escape(name.replace(/\.ts$/, '.js'))}$` : `^(\\.\\./)+${escape(name)}/`);

const boundaries = floors.flatMap((names, floor) => {
  const above = floors.slice(floor + 1).flat();
  if (above.length === 0) return [];
  return names.map((name) => ({
    files: [name.endsWith('.ts') ? `src/${name}` : `src/${name}/**/*.ts`],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: above.map((higher) => ({ regex: reaching(higher), message: `src/${name} is below ${higher} in floors.json: an import never points up a floor.` })),
      }],
    },
  }));
});

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/', '.corpus/', '.bench/', 'maas-demo/', 'maas-demo.oci/'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
    },
  },
  { files: ['src/**/*.ts'], rules: { 'no-console': 'error' } },
  ...boundaries,
  { files: ['src/ui/**/*.ts'], rules: { 'no-console': 'off' } },
);
