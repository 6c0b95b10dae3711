/**
 * Version policies, as TF Serving and Triton have them: which of a model's versions a server
 * serves. A policy is one or more terms joined by `+`, their union:
 *
 *   latest:N        the N highest versions
 *   all             every version
 *   specific:1,3    the versions listed; an entry may be an alias (`specific:prod,3`)
 *   aliases         every version an alias points to
 *
 * The default, `latest:1+aliases`, is the newest version and whatever an alias names. Pure and
 * light: maas.yaml's validation and the `--version-policy` option both read it.
 */
import { MaasError } from '../core/errors.js';

export type PolicyTerm =
  | { kind: 'latest'; count: number }
  | { kind: 'all' }
  | { kind: 'specific'; versions: number[]; aliases: string[] }
  | { kind: 'aliases' };

export interface VersionPolicy {
  terms: PolicyTerm[];
}

export const DEFAULT_VERSION_POLICY = 'latest:1+aliases';

const ALIAS = /^[a-z][a-z0-9._-]*$/;

/** Why `text` is not a policy, or undefined when it is one. */
export function policyProblem(text: string): string | undefined {
  for (const term of text.split('+')) {
    const [kind, arg, ...rest] = term.trim().split(':');
    if (rest.length) return `'${term}' has more than one ':'`;
    if (kind === 'all' || kind === 'aliases') {
      if (arg !== undefined) return `'${kind}' takes no argument`;
    } else if (kind === 'latest') {
      if (arg === undefined || !/^[1-9]\d{0,5}$/.test(arg)) return `'latest' needs a count from 1 to 999999, as in latest:2`;
    } else if (kind === 'specific') {
      const entries = (arg ?? '').split(',');
      if (arg === undefined || entries.some((e) => !/^[1-9]\d*$/.test(e) && !ALIAS.test(e))) return `'specific' needs versions or aliases, as in specific:1,3 or specific:prod`;
    } else {
      return `'${term}' is not a policy term (latest:N, all, specific:V,..., aliases)`;
    }
  }
  return undefined;
}

export function parseVersionPolicy(text: string, where = '--version-policy'): VersionPolicy {
  const problem = policyProblem(text);
  if (problem) {
    throw new MaasError('MAAS_USAGE', `${where} '${text.slice(0, 80)}': ${problem}`, {
      hint: `Use latest:N, all, specific:1,3 (versions or aliases), aliases, or several joined by + (default ${DEFAULT_VERSION_POLICY}).`,
    });
  }
  return {
    terms: text.split('+').map((term): PolicyTerm => {
      const [kind, arg = ''] = term.trim().split(':');
      if (kind === 'latest') return { kind, count: Number(arg) };
      if (kind === 'specific') {
        const entries = arg.split(',');
        return { kind, versions: entries.filter((e) => /^\d+$/.test(e)).map(Number), aliases: entries.filter((e) => !/^\d+$/.test(e)) };
      }
      return { kind: kind as 'all' | 'aliases' };
    }),
  };
}

/** A policy as `--version-policy` takes it. */
export function formatVersionPolicy(policy: VersionPolicy): string {
  return policy.terms.map((term) => {
    if (term.kind === 'latest') return `latest:${term.count}`;
    if (term.kind === 'specific') return `specific:${[...term.versions, ...term.aliases].join(',')}`;
    return term.kind;
  }).join('+');
}

/** The versions a policy serves out of those registered, highest last. */
export function selectVersions(policy: VersionPolicy, versions: number[], aliases: Record<string, number>): number[] {
  const existing = new Set(versions);
  const sorted = [...existing].sort((a, b) => a - b);
  const chosen = new Set<number>();
  for (const term of policy.terms) {
    if (term.kind === 'all') sorted.forEach((v) => chosen.add(v));
    if (term.kind === 'latest') sorted.slice(-term.count).forEach((v) => chosen.add(v));
    if (term.kind === 'aliases') Object.values(aliases).forEach((v) => chosen.add(v));
    if (term.kind === 'specific') {
      term.versions.forEach((v) => chosen.add(v));
      term.aliases.forEach((a) => aliases[a] !== undefined && chosen.add(aliases[a]));
    }
  }
  return [...chosen].filter((v) => existing.has(v)).sort((a, b) => a - b);
}

/** The entries of a policy's `specific` terms that name no registered version and no alias: served once they do. */
export function missingFromPolicy(policy: VersionPolicy, versions: number[], aliases: Record<string, number>): string[] {
  const existing = new Set(versions);
  return policy.terms.flatMap((term) => (term.kind === 'specific'
    ? [...term.versions.filter((v) => !existing.has(v)).map(String), ...term.aliases.filter((a) => aliases[a] === undefined)]
    : []));
}
