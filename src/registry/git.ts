/** The only importer of simple-git. Every function takes the registry folder as baseDir. */
import { resolve } from 'node:path';
import { simpleGit, type SimpleGit } from 'simple-git';
import { MaasError, messageOf } from '../core/errors.js';
import type { Env } from '../core/context.js';

/** Commits need an identity; CI machines often have none, so maas supplies one then. */
const FALLBACK_IDENTITY = { name: 'maas', email: 'maas@localhost' };

/**
 * What git sees of the environment: enough to find itself, its config and an identity. Editors,
 * pagers and askpass helpers stay out: maas never runs git interactively (simple-git refuses them too).
 */
const PASSED_ENV = /^(PATH|HOME|USER|LOGNAME|LANG|LC_\w+|TZ|TMPDIR|XDG_CONFIG_HOME|SYSTEMROOT|GIT_(AUTHOR|COMMITTER)_(NAME|EMAIL|DATE)|GIT_CONFIG_(NOSYSTEM|GLOBAL|SYSTEM))$/;

export interface TagInfo {
  commit: string;
  author: string;
  email: string;
  date: string;
}

function wrap(error: unknown, action: string): MaasError {
  return new MaasError('MAAS_GIT_FAILED', `git ${action} failed: ${messageOf(error).trim()}`, {
    hint: 'Run `git status` in the registry folder to see what git reports; `maas verify` repairs interrupted maas writes.',
    cause: error,
  });
}

export class Git {
  private constructor(
    private readonly git: SimpleGit,
    private readonly baseDir: string,
  ) {}

  static async open(baseDir: string, env: Env): Promise<Git> {
    const childEnv: Record<string, string> = {};
    for (const [key, value] of Object.entries(env)) if (value !== undefined && PASSED_ENV.test(key)) childEnv[key] = value;
    // The environment is the user's own, so GIT_CONFIG_GLOBAL and friends are honoured.
    const git = simpleGit({ baseDir, unsafe: { allowUnsafeConfigPaths: true } }).env(childEnv);
    const hasIdentity = async (key: string) => (await git.raw(['config', '--get', key]).catch(() => '')).trim() !== '';
    if (!childEnv.GIT_AUTHOR_NAME && !(await hasIdentity('user.name'))) {
      Object.assign(childEnv, { GIT_AUTHOR_NAME: FALLBACK_IDENTITY.name, GIT_COMMITTER_NAME: FALLBACK_IDENTITY.name });
    }
    if (!childEnv.GIT_AUTHOR_EMAIL && !(await hasIdentity('user.email'))) {
      Object.assign(childEnv, { GIT_AUTHOR_EMAIL: FALLBACK_IDENTITY.email, GIT_COMMITTER_EMAIL: FALLBACK_IDENTITY.email });
    }
    return new Git(git.env(childEnv), baseDir);
  }

  /** The top of the git work tree containing baseDir, or undefined outside any repository. */
  async topLevel(): Promise<string | undefined> {
    try {
      return (await this.git.revparse(['--show-toplevel'])).trim();
    } catch (error) {
      // Git refuses a repository another user owns (CVE-2022-24765): a shared volume, a container.
      const message = messageOf(error);
      if (message.includes('dubious ownership')) {
        const dir = /repository at '([^']+)'/.exec(message)?.[1] ?? this.baseDir;
        throw new MaasError('MAAS_GIT_FAILED', `git refuses the repository at ${dir}: another user owns it ("dubious ownership")`, {
          hint: `If you trust it, tell git so: git config --global --add safe.directory ${dir}. Or run maas as the user who owns it.`,
        });
      }
      return undefined;
    }
  }

  /** Whether the enclosing repository ignores `path` (a registry there needs a repository of its own). */
  async ignores(path: string): Promise<boolean> {
    // check-ignore prints the path when it is ignored (its exit code alone is not reported by simple-git).
    const out = await this.git.raw(['check-ignore', path]).catch(() => '');
    return out.trim() !== '';
  }

  /**
   * The top of the repository that commits `dir` (the folder this Git was opened on): undefined
   * outside any repository, or where the enclosing one ignores it (its commits would fail).
   */
  async committingRepository(dir: string): Promise<string | undefined> {
    const top = await this.topLevel();
    if (top === undefined) return undefined;
    if (resolve(top) === resolve(dir)) return top; // its own repository never ignores its root
    return (await this.ignores(dir)) ? undefined : top;
  }

  async init(): Promise<void> {
    try {
      await this.git.init(['--initial-branch=main']);
    } catch (error) {
      throw wrap(error, 'init');
    }
  }

  /** Stages `paths` (additions, changes and deletions) and commits only them. */
  async commit(paths: string[], message: string): Promise<string> {
    try {
      await this.git.raw(['add', '-A', '--', ...paths]);
      await this.git.raw(['commit', '--quiet', '--no-verify', '-m', message, '--', ...paths]);
      return (await this.git.revparse(['HEAD'])).trim();
    } catch (error) {
      throw wrap(error, 'commit');
    }
  }

  /** Points tag `name` at HEAD, replacing a stale tag of that name. */
  async createTag(name: string): Promise<void> {
    try {
      await this.git.raw(['tag', '--force', name, 'HEAD']);
    } catch (error) {
      throw wrap(error, `tag ${name}`);
    }
  }

  async deleteTag(name: string): Promise<void> {
    try {
      await this.git.raw(['tag', '-d', name]);
    } catch (error) {
      throw wrap(error, `tag -d ${name}`);
    }
  }

  /** Tags matching a glob, with the author and date of the commit each points at. */
  async tags(pattern: string): Promise<Map<string, TagInfo>> {
    const format = '%(refname:strip=2)%00%(objectname)%00%(authorname)%00%(authoremail)%00%(authordate:iso-strict)';
    let raw: string;
    try {
      raw = await this.git.raw(['for-each-ref', `--format=${format}`, `refs/tags/${pattern}`]);
    } catch (error) {
      throw wrap(error, 'for-each-ref');
    }
    const tags = new Map<string, TagInfo>();
    for (const line of raw.split('\n')) {
      if (!line) continue;
      const [name = '', commit = '', author = '', email = '', date = ''] = line.split('\0');
      tags.set(name, { commit, author, email: email.replace(/^<|>$/g, ''), date });
    }
    return tags;
  }

  /** The full message of HEAD, or '' in a repository without commits. */
  async headMessage(): Promise<string> {
    return (await this.git.raw(['log', '-1', '--format=%B']).catch(() => '')).trim();
  }

  async headCommit(): Promise<string | undefined> {
    return (await this.git.revparse(['HEAD']).catch(() => '')).trim() || undefined;
  }

  /** The object ids of `rev:path` specs, in order; undefined for one that does not exist. */
  async objectIds(specs: string[]): Promise<(string | undefined)[]> {
    return Promise.all(specs.map(async (spec) => (await this.git.raw(['rev-parse', '--verify', '-q', spec]).catch(() => '')).trim() || undefined));
  }

  /** Whether `path` is tracked in HEAD. */
  async inHead(path: string): Promise<boolean> {
    const out = await this.git.raw(['ls-tree', '--name-only', 'HEAD', '--', path]).catch(() => '');
    return out.trim() !== '';
  }

  /** Puts `paths` back as HEAD has them, in the index and the work tree. */
  async restore(paths: string[]): Promise<void> {
    try {
      await this.git.raw(['checkout', 'HEAD', '--', ...paths]);
    } catch (error) {
      throw wrap(error, 'checkout');
    }
  }

  /** Sets the index entries of `paths` to HEAD's, leaving the work tree as it is. */
  async resetIndex(paths: string[]): Promise<void> {
    try {
      await this.git.raw(['reset', '-q', 'HEAD', '--', ...paths]);
    } catch (error) {
      throw wrap(error, 'reset');
    }
  }

  async unstage(paths: string[]): Promise<void> {
    await this.git.raw(['rm', '--cached', '-r', '-q', '--ignore-unmatch', '--', ...paths]).catch((error) => {
      throw wrap(error, 'rm --cached');
    });
  }

  /** Paths under `paths` that differ from HEAD (modified, added, deleted or untracked). */
  async changed(paths: string[]): Promise<string[]> {
    try {
      const raw = await this.git.raw(['status', '--porcelain=v1', '-z', '--untracked-files=all', '--', ...paths]);
      return raw.split('\0').filter(Boolean).map((entry) => entry.slice(3));
    } catch (error) {
      throw wrap(error, 'status');
    }
  }

  /** Pushes the current branch and the given tags to a git remote (default: the branch's upstream, else origin). */
  async pushWithTags(tags: string[], remote?: string): Promise<string> {
    const target = remote ?? ((await this.git.raw(['config', '--get', `branch.${(await this.git.revparse(['--abbrev-ref', 'HEAD'])).trim()}.remote`]).catch(() => '')).trim() || 'origin');
    try {
      await this.git.raw(['push', '--quiet', target, 'HEAD', ...tags.map((t) => `refs/tags/${t}`)]);
    } catch (error) {
      throw new MaasError('MAAS_REMOTE_REJECTED', `git push to '${target}' failed: ${messageOf(error).trim()}`, {
        hint: `Check \`git remote -v\` in the registry and that you may push to '${target}'; the OCI push itself succeeded.`,
        cause: error,
      });
    }
    return target;
  }

  /** Commits that touched `path`, newest first. */
  async log(path: string, limit: number): Promise<{ commit: string; author: string; date: string; subject: string }[]> {
    const raw = await this.git.raw(['log', `-${limit}`, '--format=%H%x00%an%x00%aI%x00%s', '--', path]).catch((error) => {
      throw wrap(error, 'log');
    });
    return raw.split('\n').filter(Boolean).map((line) => {
      const [commit = '', author = '', date = '', subject = ''] = line.split('\0');
      return { commit, author, date, subject };
    });
  }
}
