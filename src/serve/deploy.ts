/**
 * `maas deploy`, `undeploy` and `ps`: a laptop's or a CI job's side of a running server's
 * management API. Deploy asks the server for its index first: when it already has the version
 * (the same manifest digest: it serves this registry, or one the version was pulled into), it is
 * only told to load it; otherwise the version is pushed to a remote the server can pull from,
 * and the server loads it from there.
 */
import { MaasError } from '../core/errors.js';
import type { VersionStatus } from '../inference/manager.js';
import { parseRef } from '../registry/refs.js';
import { Registry } from '../registry/registry.js';
import { type PushResult, type TransferContext, push } from '../remote/transfer.js';
import { type ServerTarget, callServer } from './http/client.js';

export interface DeployOptions {
  ref: string;
  server: ServerTarget;
  /** where to push when the server lacks the version: oci://host/repo, or a named remote; default: maas.yaml's. */
  remote?: string | undefined;
  plainHttp?: boolean;
  onProgress?: Parameters<typeof push>[0]['onProgress'];
}

export interface DeployResult {
  name: string;
  version: number;
  server: string;
  manifestDigest: string;
  /** `registry`: the server had the version; `remote`: it pulled it from `source`. */
  via: 'registry' | 'remote';
  source?: string;
  pushed?: Omit<PushResult, 'ref'>;
  versions: VersionStatus[];
}

interface LoadAnswer {
  name: string;
  versions: VersionStatus[];
}

export async function deploy(options: DeployOptions, ctx: TransferContext): Promise<DeployResult> {
  const registry = await Registry.open(ctx);
  const { name, version } = registry.resolve(parseRef(options.ref));
  const { manifestDigest } = registry.readVersion(name, version);
  const index = await callServer<VersionStatus[]>(options.server, '/v2/repository/index', {});
  if (!Array.isArray(index)) throw new MaasError('MAAS_REMOTE_REJECTED', `${options.server.url} answered its index with something that is not a list`, { hint: 'Is this a maas server?' });
  const there = index.find((s) => s?.name === name && s?.version === String(version));
  const base = { name, version, server: options.server.url, manifestDigest };
  if (there && there.digest === manifestDigest) {
    const loaded = await callServer<LoadAnswer>(options.server, `/v2/repository/models/${encodeURIComponent(name)}/load`, { parameters: { version: String(version) } });
    return { ...base, via: 'registry', versions: loaded.versions };
  }
  if (there) {
    throw new MaasError('MAAS_VERSION_CONFLICT', `${options.server.url} has another ${name}@${version}: manifest ${there.digest} there, ${manifestDigest} here (its files, or what was recorded with them such as the time it was registered, differ)`, {
      hint: 'Versions are immutable: deploy from the registry that server serves (or pull its version here), or register these bytes as a new version and deploy that one.',
    });
  }
  if ((options.remote ?? registry.config.defaults.remote ?? undefined) === undefined) {
    throw new MaasError('MAAS_USAGE', `${options.server.url} does not have ${name}@${version}, and there is no remote to push it to`, {
      hint: 'Pass --remote oci://registry/repository that the server can pull from (or set defaults.remote in maas.yaml).',
    });
  }
  const pushed = await push({ ref: `${name}@${version}`, remote: options.remote, plainHttp: options.plainHttp, onProgress: options.onProgress }, ctx);
  if (!pushed.remote.startsWith('oci://')) {
    throw new MaasError('MAAS_USAGE', `${pushed.remote} is a folder here, which the server cannot pull from`, { hint: 'Deploy through an OCI registry both can reach: --remote oci://host/repository.' });
  }
  const source = `${pushed.remote}:${version}`;
  const loaded = await callServer<LoadAnswer>(options.server, `/v2/repository/models/${encodeURIComponent(name)}/load`, { parameters: { source } });
  const { ref: _ref, ...pushFacts } = pushed;
  return { ...base, via: 'remote', source, pushed: pushFacts, versions: loaded.versions };
}

export interface UndeployResult {
  name: string;
  server: string;
  versions: VersionStatus[];
}

/** Unloads NAME (every version it serves) or NAME@VERSION; the server refuses it until it is loaded again. */
export async function undeploy(options: { ref: string; server: ServerTarget }): Promise<UndeployResult> {
  const ref = parseRef(options.ref);
  const version = ref.selector.kind === 'version' ? String(ref.selector.version) : ref.selector.kind === 'alias' ? ref.selector.alias : undefined;
  const answer = await callServer<LoadAnswer>(options.server, `/v2/repository/models/${encodeURIComponent(ref.name)}/unload`, version === undefined ? {} : { parameters: { version } });
  return { name: ref.name, server: options.server.url, versions: answer.versions };
}

export interface PsResult {
  server: string;
  /** loaded versions (and loading or unloading ones); with `all`, every version the server could load. */
  models: VersionStatus[];
}

export async function listServer(options: { server: ServerTarget; all: boolean }): Promise<PsResult> {
  const index = await callServer<VersionStatus[]>(options.server, '/v2/repository/index', {});
  if (!Array.isArray(index)) throw new MaasError('MAAS_REMOTE_REJECTED', `${options.server.url} answered its index with something that is not a list`, { hint: 'Is this a maas server?' });
  return { server: options.server.url, models: options.all ? index : index.filter((s) => s.state !== 'UNAVAILABLE') };
}
