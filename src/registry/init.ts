/** `maas init`: a git repository (or a folder in one) with maas.yaml, .gitignore and a first commit. */
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Env } from '../core/context.js';
import { MaasError } from '../core/errors.js';
import { makeFolders, writeFileAtomic } from '../core/fs.js';
import { VERSION } from '../core/version.js';
import type { CiProvider, Device, RegistryConfig } from './config.js';
import { readConfig } from './config-file.js';
import { Git } from './git.js';
import { CONFIG_FILE } from './layout.js';


export interface InitOptions {
  dir: string;
  name: string;
  device: Device;
  remote: string | null;
  ci: CiProvider | undefined;
  /** also write a Prometheus scrape config, its alert rules and a Grafana dashboard under monitoring/. */
  monitoring?: boolean;
  /** make a registry of a folder that already holds other files. */
  force?: boolean;
}

export interface InitResult {
  root: string;
  name: string;
  device: Device;
  remote: string | null;
  /** false when the registry was made in a folder of an existing git repository. */
  createdRepository: boolean;
  gitRoot: string;
  files: string[];
  commit: string | undefined;
  /** what the user must still do for the files written to work (a CI job with no remote to push to). */
  warnings: string[];
}

const TEMPLATES = fileURLToPath(new URL('../../templates/', import.meta.url));
const CI_FILES: Record<CiProvider, { template: string; target: string }> = {
  github: { template: 'ci/github-push.yml', target: '.github/workflows/maas-push.yml' },
  gitlab: { template: 'ci/gitlab-push.yml', target: '.gitlab/maas-push.yml' },
};
/** What --monitoring writes, relative to the registry: Prometheus finds alerts.yml next to prometheus.yml. */
const MONITORING_FILES = [
  { template: 'prometheus/prometheus.yml', target: 'monitoring/prometheus/prometheus.yml' },
  { template: 'prometheus/alerts.yml', target: 'monitoring/prometheus/alerts.yml' },
  { template: 'grafana/maas.json', target: 'monitoring/grafana/maas.json' },
];

/** A file of templates/ with its {{key}} placeholders filled. */
export function renderTemplate(template: string, values: Record<string, string>): string {
  const text = readFileSync(join(TEMPLATES, template), 'utf8');
  return text.replace(/\{\{(\w+)\}\}/g, (_, key: string) => values[key] ?? `{{${key}}}`);
}

/** The folder name as a registry name: what init proposes when none is given. */
export function defaultRegistryName(dir: string): string {
  return basename(resolve(dir)) || 'models';
}

/** What a folder may already hold and still become a registry: a fresh repository, its ignore file. */
const WELCOME_ENTRIES = new Set(['.git', '.gitignore']);

/** Entries of `dir` that maas would not have made: a registry there would mix with them. */
export function foreignEntries(dir: string): string[] {
  try {
    return readdirSync(dir).filter((entry) => !WELCOME_ENTRIES.has(entry)).sort();
  } catch {
    return []; // a folder that does not exist yet is made fresh
  }
}

export async function initRegistry(options: InitOptions, ctx: { cwd: string; env: Env }): Promise<InitResult> {
  const root = resolve(ctx.cwd, options.dir);
  let kept: RegistryConfig | undefined;
  if (existsSync(join(root, CONFIG_FILE))) {
    if ((await (await Git.open(root, ctx.env)).committingRepository(root)) !== undefined) {
      throw new MaasError('MAAS_REGISTRY_EXISTS', `${root} already holds a maas registry`, {
        hint: 'Use it as it is (maas list), or choose another folder: maas init DIR.',
      });
    }
    // A maas.yaml no repository commits (a copied folder, a lost .git): --force makes it a
    // registry and keeps the file, which may hold remotes, trust and serving settings.
    if (!options.force) {
      throw new MaasError('MAAS_USAGE', `${root} holds ${CONFIG_FILE} but no git repository, so it is not a registry yet`, {
        hint: `Pass --force to make it one, keeping its ${CONFIG_FILE}: maas init ${options.dir} --force.`,
      });
    }
    kept = readConfig(join(root, CONFIG_FILE));
  }
  const foreign = foreignEntries(root);
  if (foreign.length && !options.force) {
    const shown = foreign.slice(0, 5).join(', ') + (foreign.length > 5 ? `, and ${foreign.length - 5} more` : '');
    throw new MaasError('MAAS_USAGE', `${root} is not empty (${shown}); maas init makes a registry of an empty or new folder`, {
      hint: `Choose a new folder (maas init ${join(options.dir, 'models')}), or pass --force to make a registry here alongside those files.`,
    });
  }
  const monitoring = options.monitoring ? MONITORING_FILES : [];
  const taken = monitoring.map(({ target }) => join(root, target)).filter((path) => existsSync(path));
  if (taken.length) {
    throw new MaasError('MAAS_REGISTRY_EXISTS', `${taken.join(', ')} already exist${taken.length === 1 ? 's' : ''}`, { hint: 'Move them aside, or run init without --monitoring.' });
  }
  makeFolders(root);
  const git = await Git.open(root, ctx.env);
  const enclosing = await git.topLevel();
  // A folder the enclosing repository ignores cannot commit there: it gets its own repository.
  const existingTop = enclosing && !(await git.ignores(root)) ? enclosing : undefined;
  if (!existingTop) await git.init();
  const gitRoot = existingTop ?? root;

  const files: string[] = [];
  const write = (relPath: string, text: string) => {
    writeFileAtomic(join(root, relPath), text);
    files.push(relPath);
  };
  const yamlString = (value: string | null) => (value === null ? 'null' : JSON.stringify(value));
  if (kept) files.push(CONFIG_FILE);
  else write(CONFIG_FILE, renderTemplate('maas.yaml', { name: yamlString(options.name), device: options.device, remote: yamlString(options.remote) }));

  const ignore = renderTemplate('gitignore', {});
  const ignorePath = join(root, '.gitignore');
  const current = existsSync(ignorePath) ? readFileSync(ignorePath, 'utf8') : '';
  if (!current.includes('/blobs/')) write('.gitignore', current && !current.endsWith('\n') ? `${current}\n${ignore}` : current + ignore);

  let job: string | undefined;
  if (options.ci) {
    const { template, target } = CI_FILES[options.ci];
    const targetPath = join(gitRoot, target);
    if (existsSync(targetPath)) {
      throw new MaasError('MAAS_REGISTRY_EXISTS', `${targetPath} already exists`, { hint: 'Move it aside, or run init without --ci.' });
    }
    const registryPath = relative(gitRoot, root) || '.';
    // The job pushes to maas.yaml's defaults.remote: the remote lives in one place, not also in the job.
    const text = renderTemplate(template, { registryPath, maasVersion: VERSION });
    makeFolders(dirname(targetPath));
    writeFileSync(targetPath, text);
    job = relative(root, targetPath);
    files.push(job);
  }

  // Grafana's own {{label}} legends are not template keys: only {{maasVersion}} is filled in.
  for (const { template, target } of monitoring) {
    makeFolders(dirname(join(root, target)));
    write(target, renderTemplate(template, { maasVersion: VERSION }));
  }

  const { name, device, remote } = kept ? { name: kept.name, ...kept.defaults } : options;
  const commit = await git.commit(files, `maas: create registry ${name}`);
  const warnings = job && !remote ? [`${job} pushes to defaults.remote in maas.yaml, which is empty: set it (oci://HOST/NAMESPACE) before the job runs`] : [];
  return { root, name, device, remote, createdRepository: !existingTop, gitRoot, files, commit, warnings };
}
