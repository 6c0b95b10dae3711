import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { rawTar } from '../helpers/hostile-registry.js';
import { makeRegistry } from '../helpers/registry.js';
import { BIN, runCli } from '../helpers/run-cli.js';

describe('maas pack / maas import', () => {
  it('packs a version into a reproducible OCI layout tarball that imports elsewhere', async () => {
    const reg = await makeRegistry();
    await reg.cli('register', reg.fixture('mlp.onnx'));
    const packed = await reg.cli('pack', 'mlp@1', '-o', join(reg.work, 'mlp.tar'), '--json');
    expect(packed.exitCode, packed.stdout).toBe(0);
    expect(packed.json()).toMatchObject({ ref: 'mlp@1', tags: ['1'], archive: join(reg.work, 'mlp.tar') });
    await reg.cli('pack', 'mlp@1', '-o', join(reg.work, 'again.tar'));
    const sha = (f: string) => createHash('sha256').update(readFileSync(join(reg.work, f))).digest('hex');
    expect(sha('again.tar')).toBe(sha('mlp.tar'));

    const other = await makeRegistry();
    const imported = await other.cli('import', join(reg.work, 'mlp.tar'), '--json');
    expect(imported.exitCode, imported.stdout).toBe(0);
    expect(imported.json()).toMatchObject({ status: 'imported', name: 'mlp', version: 1, manifestDigest: packed.json().manifestDigest });
    expect(readFileSync(join(other.dir, 'models/mlp/1/manifest.json'))).toEqual(readFileSync(join(reg.dir, 'models/mlp/1/manifest.json')));
    expect((await other.cli('verify')).exitCode).toBe(0);
    const renamed = await other.cli('import', join(reg.work, 'mlp.tar'), '--name', 'copy', '--version', '3');
    expect(renamed.stdout).toContain('as copy@3');
  });

  it('refuses a tar-slip archive before extracting anything (exit 5)', async () => {
    const reg = await makeRegistry();
    const cases: [string, Parameters<typeof rawTar>[0], string][] = [
      ['dotdot', [{ name: 'oci-layout', body: '{"imageLayoutVersion":"1.0.0"}' }, { name: '../escaped.txt', body: 'pwned' }], '../escaped.txt'],
      ['absolute', [{ name: `${reg.work}/absolute.txt`, body: 'pwned' }], 'absolute.txt'],
      ['symlink', [{ name: 'blobs/sha256/link', type: '2', link: '/etc/passwd' }], 'is a SymbolicLink'],
      ['hardlink', [{ name: 'index.json', type: '1', link: '../../etc/passwd' }], 'is a Link'],
    ];
    for (const [label, entries, message] of cases) {
      const file = join(reg.work, `${label}.tar`);
      writeFileSync(file, rawTar(entries));
      const r = await reg.cli('import', file, '--json');
      expect(r.exitCode, label).toBe(5);
      expect(r.json().error, label).toMatchObject({ code: 'MAAS_ARCHIVE_UNSAFE', message: expect.stringContaining(message) });
    }
    expect(existsSync(join(reg.home, 'escaped.txt'))).toBe(false);
    expect(existsSync(join(reg.work, 'escaped.txt'))).toBe(false);
    expect(existsSync(join(reg.work, 'absolute.txt'))).toBe(false);
    expect(existsSync(join(reg.dir, 'models'))).toBe(false);
    writeFileSync(join(reg.work, 'garbage.tar'), 'not a tar at all');
    expect((await reg.cli('import', join(reg.work, 'garbage.tar'))).exitCode).toBe(5);
  });
});

describe('push --git and serving from a remote', () => {
  it('push --git also sends the commits and the version tag to the git remote', async () => {
    const reg = await makeRegistry();
    await reg.cli('register', reg.fixture('mlp.onnx'));
    const origin = join(reg.home, 'origin.git');
    execFileSync('git', ['init', '-q', '--bare', origin]);
    execFileSync('git', ['remote', 'add', 'origin', origin], { cwd: reg.dir });
    const r = await reg.cli('push', 'mlp@1', `oci-layout:${join(reg.work, 'layout')}`, '--git', '--json');
    expect(r.exitCode, r.stdout).toBe(0);
    expect(r.json().gitRemote).toBe('origin');
    expect(execFileSync('git', ['--git-dir', origin, 'tag'], { encoding: 'utf8' }).trim()).toBe('mlp@v1');
    expect(execFileSync('git', ['--git-dir', origin, 'log', '--format=%s', 'main'], { encoding: 'utf8' })).toContain('register mlp@1');
  });

  it('a push to a layout drops the half-copied blobs of a push that was killed, not those of one still running', async () => {
    const reg = await makeRegistry();
    await reg.cli('register', reg.fixture('mlp.onnx'));
    const layout = join(reg.work, 'layout');
    expect((await reg.cli('push', 'mlp@1', `oci-layout:${layout}`)).exitCode).toBe(0);
    const blobs = join(layout, 'blobs/sha256');
    // A pid no process has (above Linux's pid_max), and this test's own, still running.
    const [killed, running] = [`.tmp-4194999-${'a'.repeat(12)}`, `.tmp-${process.pid}-${'b'.repeat(12)}`];
    for (const name of [killed, running]) writeFileSync(join(blobs, name), 'half a blob');
    expect((await reg.cli('push', 'mlp@1', `oci-layout:${layout}`)).exitCode).toBe(0);
    expect(existsSync(join(blobs, killed))).toBe(false);
    expect(existsSync(join(blobs, running))).toBe(true);
  });

  it('a push mends a layout that a kill left with its oci-layout marker but no index.json (as an older maas wrote them)', async () => {
    const reg = await makeRegistry();
    await reg.cli('register', reg.fixture('mlp.onnx'));
    const layout = join(reg.work, 'layout');
    mkdirSync(join(layout, 'blobs/sha256'), { recursive: true });
    writeFileSync(join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    const halfIndex = join(layout, `.tmp-4194999-${'c'.repeat(12)}`);
    writeFileSync(halfIndex, '{"schemaVersion":');
    const r = await reg.cli('push', 'mlp@1', `oci-layout:${layout}`);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(existsSync(halfIndex)).toBe(false);
    const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8'));
    expect(index.manifests.map((m: { annotations?: Record<string, string> }) => m.annotations?.['org.opencontainers.image.ref.name'])).toEqual(['1']);
  });

  it('maas serve oci-layout:PATH:TAG pulls into the cache registry, then serves it', async () => {
    const reg = await makeRegistry();
    await reg.cli('register', reg.fixture('mlp.onnx'));
    const layout = join(reg.work, 'layout');
    await reg.cli('push', 'mlp@1', `oci-layout:${layout}`);
    const env = { ...reg.env, MAAS_CACHE_DIR: join(reg.home, 'cache') };
    const child = spawn(process.execPath, [BIN, 'serve', `oci-layout:${layout}:1`, '--port', '0', '--device', 'cpu', '--json'], { cwd: reg.home, env });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d) => {
        out += d;
        if (out.includes('\n')) resolve(JSON.parse(out).url);
      });
      child.once('exit', () => reject(new Error(stderr)));
    });
    const res = await fetch(`${url}/v2/models/mlp/infer`, { method: 'POST', body: JSON.stringify({ inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 1, 1, 1] }] }) });
    expect(res.status).toBe(200);
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(stderr).toContain(`pulled oci-layout:${layout}:1 as mlp@1`);
    expect(existsSync(join(reg.home, 'cache', 'models/mlp/1/manifest.json'))).toBe(true);
  });
});

describe('named remotes', () => {
  it('adds, uses, lists and removes a remote in maas.yaml, each a commit', async () => {
    const reg = await makeRegistry();
    await reg.cli('register', reg.fixture('mlp.onnx'));
    const layout = join(reg.work, 'named');
    const added = await reg.cli('remote', 'add', 'offline', `oci-layout:${layout}`);
    expect(added.exitCode, added.stderr).toBe(0);
    expect(readFileSync(join(reg.dir, 'maas.yaml'), 'utf8')).toContain(`offline: oci-layout:${layout}`);
    expect(readFileSync(join(reg.dir, 'maas.yaml'), 'utf8')).toContain('# where `maas push` sends versions'); // comments kept
    expect((await reg.cli('push', 'mlp@1', 'offline', '--json')).json().remote).toBe(`oci-layout:${layout}`);
    const other = await makeRegistry();
    await other.cli('remote', 'add', 'offline', `oci-layout:${layout}`);
    expect((await other.cli('pull', 'offline:1', '--json')).json()).toMatchObject({ status: 'imported', ref: 'mlp@1' });
    expect((await reg.cli('remote', 'list', '--json')).json()).toEqual({ remotes: { offline: `oci-layout:${layout}` } });
    // Adding a name again replaces it, and says what it was.
    const replaced = await reg.cli('remote', 'add', 'offline', `oci-layout:${layout}-2`);
    expect(replaced.stdout).toContain(`Replaced remote offline (was oci-layout:${layout})`);
    expect((await reg.cli('remote', 'rm', 'offline')).exitCode).toBe(0);
    expect((await reg.cli('remote', '--json')).json()).toEqual({ remotes: {} });
    expect(execFileSync('git', ['log', '--format=%s', '-3'], { cwd: reg.dir, encoding: 'utf8' }).trim().split('\n').slice(0, 2)).toEqual(['remote rm offline', 'remote add offline']); // the add that replaced it, then the rm
    expect((await reg.cli('remote', 'add', 'bad', 'ftp://x')).exitCode).toBe(2);
    const ghost = await reg.cli('remote', 'rm', 'ghost', '--json');
    expect(ghost.exitCode).toBe(4); // not found, as a model or alias that is not there
    expect(ghost.json().error).toMatchObject({ code: 'MAAS_REMOTE_NAME_NOT_FOUND', message: "no remote named 'ghost'" });
    for (const [args, message] of [[['rm', ''], "maas remote rm needs the remote's NAME, and '' is blank"], [['add'], "maas remote add needs the remote's NAME"], [['drop', 'x'], "'drop' is not a remote command"], [['rm', 'x', 'y'], "maas remote rm takes only the NAME; 'y' is one too many"], [['list', 'x'], "maas remote list takes no arguments; 'x' is one too many"]] as const) {
      const refused = await reg.cli('remote', ...args, '--json');
      expect(refused.exitCode, message).toBe(2);
      expect(refused.json().error).toMatchObject({ code: 'MAAS_USAGE', message, hint: 'maas remote add NAME URL | maas remote rm NAME | maas remote list' });
    }
    // `constructor` is a valid remote name, and no remote until added: not Object's own property.
    const unnamed = await reg.cli('push', 'mlp@1', 'constructor', '--json');
    expect(unnamed.exitCode, unnamed.stdout).toBe(4);
    expect(unnamed.json().error).toMatchObject({ code: 'MAAS_REMOTE_NAME_NOT_FOUND', message: "no remote named 'constructor'" });
    expect((await reg.cli('remote', 'add', 'constructor', `oci-layout:${layout}-c`)).stdout).toContain('Added remote constructor');
    // A layout path in maas.yaml is the registry's, wherever the command runs.
    expect((await reg.cli('remote', 'add', 'near', 'oci-layout:exports/near')).exitCode).toBe(0);
    const sub = join(reg.dir, 'models');
    const pushed = await runCli(['push', 'mlp@1', 'near', '--json'], { cwd: sub, env: reg.env });
    expect(pushed.exitCode, pushed.stdout).toBe(0);
    expect(existsSync(join(reg.dir, 'exports/near/index.json'))).toBe(true);
    expect(existsSync(join(sub, 'exports'))).toBe(false);
  });
});
