import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { mlp, writeModel } from '../../fixtures/models.js';
import { VERSION } from '../../src/core/version.js';
import { runGithubWorkflow, runGitlabJob } from '../helpers/ci-template.js';
import { runCli } from '../helpers/run-cli.js';
import { testEnv, useTempDir } from '../helpers/temp.js';

const git = (cwd: string, ...args: string[]) => execFileSync('git', args, { cwd, encoding: 'utf8', env: testEnv(cwd) }).trim();

describe('maas init', () => {
  it('creates a git repository with maas.yaml, .gitignore and a first commit', async () => {
    const home = useTempDir();
    const r = await runCli(['init', 'models', '--yes', '--device', 'cpu'], { cwd: home, env: testEnv(home) });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain(`✔ Created registry models in ${join(home, 'models')}`);
    expect(r.stdout).toContain('new git repository');
    const dir = join(home, 'models');
    expect(readFileSync(join(dir, 'maas.yaml'), 'utf8')).toMatch(/schemaVersion: 1\nname: "models"\n[\s\S]*device: cpu\n[\s\S]*remote: null/);
    expect(readFileSync(join(dir, '.gitignore'), 'utf8')).toContain('/blobs/');
    expect(git(dir, 'log', '--format=%s %an')).toBe('maas: create registry models maas');
    expect(git(dir, 'status', '--porcelain')).toBe('');
  });

  it('prints one JSON document with --json and takes flags without prompting when not a TTY', async () => {
    const home = useTempDir();
    // No --yes: stdin is not a TTY, so init must not prompt and must use the flags and defaults.
    const r = await runCli(['init', 'reg', '--json', '--name', 'team-models', '--remote', 'oci://127.0.0.1:5000/team/models'], { cwd: home, env: testEnv(home) });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.json()).toMatchObject({ name: 'team-models', device: 'auto', remote: 'oci://127.0.0.1:5000/team/models', createdRepository: true, files: ['maas.yaml', '.gitignore'] });
    expect(r.stderr).toBe('');
  });

  it('asks for name, device and remote on a TTY', async () => {
    const home = useTempDir();
    const env = testEnv(home);
    delete env.CI;
    const r = await runCli(['init', 'asked'], { cwd: home, env, answers: [['Registry name', 'my-registry\r'], ['Default device for maas serve', '\u001b[B\r'], ['Default remote for maas push', 'oci-layout:/tmp/layout\r']] });
    expect(r.exitCode, r.stderr).toBe(0);
    const yaml = readFileSync(join(home, 'asked', 'maas.yaml'), 'utf8');
    expect(yaml).toContain('name: "my-registry"');
    expect(yaml).toContain('device: cpu');
    expect(yaml).toContain('remote: "oci-layout:/tmp/layout"');
  });

  it('refuses to clobber an existing registry (exit 6) and leaves it untouched', async () => {
    const home = useTempDir();
    const env = testEnv(home);
    await runCli(['init', 'r', '--yes'], { cwd: home, env });
    const before = readFileSync(join(home, 'r', 'maas.yaml'), 'utf8');
    const again = await runCli(['init', 'r', '--yes', '--name', 'other'], { cwd: home, env });
    expect(again.exitCode).toBe(6);
    expect(again.stderr).toContain('already holds a maas registry');
    expect(readFileSync(join(home, 'r', 'maas.yaml'), 'utf8')).toBe(before);
    const json = await runCli(['init', 'r', '--json'], { cwd: home, env });
    expect(json.json()).toEqual({ error: expect.objectContaining({ code: 'MAAS_REGISTRY_EXISTS', hint: expect.any(String) }) });
  });

  it('works in a folder of an existing git repository and commits only its own files', async () => {
    const home = useTempDir();
    const env = testEnv(home);
    const repo = join(home, 'app');
    mkdirSync(repo);
    git(repo, 'init', '-q');
    writeFileSync(join(repo, 'README.md'), 'app\n');
    writeFileSync(join(repo, 'staged.txt'), 'not mine\n');
    git(repo, 'add', 'staged.txt');
    const r = await runCli(['init', 'ml/registry', '--yes', '--ci', 'github', '--remote', 'oci://ghcr.io/acme/models'], { cwd: repo, env });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain(`inside the git repository at ${repo}`);
    expect(existsSync(join(repo, 'ml/registry/.git'))).toBe(false);
    expect(git(repo, 'show', '--name-only', '--format=', 'HEAD').split('\n').sort()).toEqual([
      '.github/workflows/maas-push.yml', 'ml/registry/.gitignore', 'ml/registry/maas.yaml',
    ]);
    expect(git(repo, 'diff', '--cached', '--name-only')).toBe('staged.txt');
    const workflow = readFileSync(join(repo, '.github/workflows/maas-push.yml'), 'utf8');
    expect(workflow).toContain('$MAAS push "$MODEL_NAME@latest" --registry ml/registry --json'); // to maas.yaml's defaults.remote
    expect(readFileSync(join(repo, 'ml/registry/maas.yaml'), 'utf8')).toContain('remote: "oci://ghcr.io/acme/models"');
    expect(r.stdout).not.toContain('⚠');
  });

  it('writes a CI job that pushes to defaults.remote, and says so when maas.yaml has none', async () => {
    const home = useTempDir();
    const r = await runCli(['init', 'reg', '--yes', '--ci', 'gitlab'], { cwd: home, env: testEnv(home) });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain('⚠ .gitlab/maas-push.yml pushes to defaults.remote in maas.yaml, which is empty: set it (oci://HOST/NAMESPACE) before the job runs');
    const job = readFileSync(join(home, 'reg/.gitlab/maas-push.yml'), 'utf8');
    expect(job).toContain('$MAAS push "$MODEL_NAME@latest" --registry . --json');
    expect(job).not.toContain('example.com'); // no placeholder host for a job to push to
    const json = await runCli(['init', 'other', '--yes', '--ci', 'github', '--json'], { cwd: home, env: testEnv(home) });
    expect(json.json().warnings).toEqual(['.github/workflows/maas-push.yml pushes to defaults.remote in maas.yaml, which is empty: set it (oci://HOST/NAMESPACE) before the job runs']);
  });

  it('makes a repository of its own in a folder the enclosing repository ignores', async () => {
    const home = useTempDir();
    const env = testEnv(home);
    git(home, 'init', '-q');
    writeFileSync(join(home, '.gitignore'), 'scratch/\n');
    const r = await runCli(['init', 'scratch/reg', '--yes', '--json'], { cwd: home, env });
    expect(r.exitCode, r.stdout).toBe(0);
    expect(r.json()).toMatchObject({ createdRepository: true, gitRoot: join(home, 'scratch/reg') });
    expect(existsSync(join(home, 'scratch/reg/.git'))).toBe(true);
  });

  it('refuses a default remote with a tag: it is a namespace', async () => {
    const home = useTempDir();
    const r = await runCli(['init', '--yes', '--remote', 'oci://ghcr.io/acme/models:v1', '--json'], { cwd: home, env: testEnv(home) });
    expect(r.exitCode).toBe(2);
    expect(r.json().error.hint).toBe('Leave the tag off: --remote oci://ghcr.io/acme/models');
    expect(existsSync(join(home, 'maas.yaml'))).toBe(false);
  });

  it('rejects an unknown device as a usage error (exit 2)', async () => {
    const home = useTempDir();
    const r = await runCli(['init', '--device', 'tpu'], { cwd: home, env: testEnv(home) });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain("Allowed choices are auto, cpu, cuda, webgpu");
  });

  it('refuses a folder that holds other files (exit 2, nothing written) unless --force', async () => {
    const home = useTempDir();
    const env = testEnv(home);
    const dir = join(home, 'project');
    mkdirSync(dir);
    writeFileSync(join(dir, 'notes.txt'), 'mine\n');
    const r = await runCli(['init', 'project', '--yes'], { cwd: home, env });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain(`${dir} is not empty (notes.txt)`);
    expect(r.stderr).toContain('--force');
    expect(readdirSync(dir)).toEqual(['notes.txt']);

    const forced = await runCli(['init', 'project', '--yes', '--force'], { cwd: home, env });
    expect(forced.exitCode, forced.stderr).toBe(0);
    expect(existsSync(join(dir, 'maas.yaml'))).toBe(true);
    expect(readFileSync(join(dir, 'notes.txt'), 'utf8')).toBe('mine\n');
  });

  it('takes an empty folder, or a fresh repository holding only .git and .gitignore', async () => {
    const home = useTempDir();
    const env = testEnv(home);
    mkdirSync(join(home, 'empty'));
    expect((await runCli(['init', 'empty', '--yes'], { cwd: home, env })).exitCode).toBe(0);
    const fresh = join(home, 'fresh');
    mkdirSync(fresh);
    git(fresh, 'init', '-q');
    writeFileSync(join(fresh, '.gitignore'), 'node_modules/\n');
    const r = await runCli(['init', 'fresh', '--yes'], { cwd: home, env });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(readFileSync(join(fresh, '.gitignore'), 'utf8')).toMatch(/^node_modules\/\n[\s\S]*\/blobs\//);
  });

  it('refuses the top of an existing repository that holds files; a new folder in it is fine', async () => {
    const home = useTempDir();
    const env = testEnv(home);
    const repo = join(home, 'app');
    mkdirSync(repo);
    git(repo, 'init', '-q');
    writeFileSync(join(repo, 'index.js'), '\n');
    const here = await runCli(['init', '.', '--yes'], { cwd: repo, env });
    expect(here.exitCode).toBe(2);
    expect(here.stderr).toContain('index.js');
    expect(existsSync(join(repo, 'maas.yaml'))).toBe(false);
    expect((await runCli(['init', 'models', '--yes'], { cwd: repo, env })).exitCode).toBe(0);
  });

  it('asks before making a registry of a non-empty folder on a TTY', async () => {
    for (const [answer, exitCode] of [['n\r', 130], ['y\r', 0]] as const) {
      const home = useTempDir();
      writeFileSync(join(home, 'data.csv'), 'a,b\n');
      const env = testEnv(home);
      delete env.CI;
      const r = await runCli(['init', '.', '--name', 'r', '--device', 'cpu', '--remote', 'oci-layout:/tmp/x'], { cwd: home, env, answers: [['Make a registry here anyway?', answer]] });
      expect(r.exitCode, r.stderr).toBe(exitCode);
      expect(r.stderr).toContain('already holds 1 other entry (data.csv)');
      expect(existsSync(join(home, 'maas.yaml'))).toBe(exitCode === 0);
      expect(existsSync(join(home, '.git'))).toBe(exitCode === 0);
    }
  });

  describe('the CI files it writes, run for real against a bare git remote', () => {
    /** A project repository cloned from a bare remote, with a registry in ml/registry. */
    async function project(ci: 'github' | 'gitlab', packageJson?: object) {
      const home = useTempDir();
      const env = testEnv(home);
      const origin = join(home, 'origin.git');
      const app = join(home, 'app');
      execFileSync('git', ['init', '-q', '--bare', '--initial-branch=main', origin]);
      execFileSync('git', ['clone', '-q', origin, app], { env });
      git(app, '-c', 'user.name=dev', '-c', 'user.email=dev@x', 'commit', '-q', '--allow-empty', '-m', 'start');
      git(app, 'push', '-q', 'origin', 'HEAD:main');
      if (packageJson) writeFileSync(join(app, 'package.json'), JSON.stringify(packageJson));
      const r = await runCli(['init', 'ml/registry', '--yes', '--ci', ci, '--remote', `oci-layout:${join(home, 'layout')}`], { cwd: app, env });
      expect(r.exitCode, r.stderr).toBe(0);
      return { home, env, origin, app };
    }
    const remoteTags = (origin: string) => git(origin, 'tag').split('\n').filter(Boolean).sort();
    const layoutTags = (layout: string) => (JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { manifests: { annotations?: Record<string, string> }[] }).manifests
      .map((m) => m.annotations?.['org.opencontainers.image.ref.name']).filter(Boolean).sort();

    it('github: every version tag and the commits reach the remote; maas is installed at the version that wrote the file', async () => {
      const { home, env, origin, app } = await project('github');
      const workflow = join(app, '.github/workflows/maas-push.yml');
      expect(readFileSync(workflow, 'utf8')).not.toContain('maas@latest');
      for (let seed = 1; seed <= 5; seed++) {
        writeModel(app, 'model.onnx', mlp({ seed }));
        const run = runGithubWorkflow(workflow, app, join(home, `run${seed}`), env, { model: 'model.onnx', name: 'mlp' });
        expect(run.npm).toEqual([`install --global maas@${VERSION}`]);
      }
      expect(remoteTags(origin)).toEqual(['mlp@v1', 'mlp@v2', 'mlp@v3', 'mlp@v4', 'mlp@v5']);
      expect(layoutTags(join(home, 'layout', 'mlp'))).toEqual(['1', '2', '3', '4', '5']);
      // Inputs go through env, never into a script's text.
      for (const step of (parse(readFileSync(workflow, 'utf8')) as { jobs: { push: { steps: { run?: string }[] } } }).jobs.push.steps) expect(step.run ?? '').not.toContain('${{');
      expect(git(origin, 'rev-parse', 'main')).toBe(git(app, 'rev-parse', 'HEAD'));
      for (let v = 1; v <= 5; v++) expect(git(origin, 'rev-parse', `mlp@v${v}`)).toBe(git(app, 'rev-parse', `mlp@v${v}`));
    });

    it('gitlab: uses the maas the project pins (npm ci, npx --no-install) and pushes every version tag', async () => {
      const { home, env, origin, app } = await project('gitlab', { name: 'app', private: true, devDependencies: { maas: 'file:vendor/maas' } });
      const job = join(app, '.gitlab/maas-push.yml');
      for (let seed = 1; seed <= 2; seed++) {
        writeModel(app, 'model.onnx', mlp({ seed }));
        const run = runGitlabJob(job, app, join(home, `run${seed}`), env, { MODEL_FILE: 'model.onnx', MODEL_NAME: 'mlp' });
        expect(run.npm).toEqual(['ci']);
      }
      expect(remoteTags(origin)).toEqual(['mlp@v1', 'mlp@v2']);
      expect(layoutTags(join(home, 'layout', 'mlp'))).toEqual(['1', '2']);
      expect(git(origin, 'rev-parse', 'main')).toBe(git(app, 'rev-parse', 'HEAD'));
    });
  });
});
