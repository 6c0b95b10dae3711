/**
 * Triton's model repository extension, the same over REST and gRPC: the index of every version
 * the server could load, a load (a version, or the policy's versions, or an oci:// reference
 * pulled into the server's registry first) and an unload that lets requests in flight finish.
 */
import { MaasError, clipped } from '../core/errors.js';
import type { VersionStatus } from '../inference/manager.js';
import { isObject } from '../inference/protocol.js';
import type { ServingCore } from './serving.js';

export interface RepositoryParameters {
  /** a version number or an alias. */
  version?: string | undefined;
  /** an oci:// reference to pull into the server's registry before loading. */
  source?: string | undefined;
}

function usage(message: string): MaasError {
  return new MaasError('MAAS_BAD_INPUT', message, { hint: 'Parameters: "version" (a number or an alias) and, for a load, "source" (oci://host/repository:tag).' });
}

/**
 * The parameters maas reads from a load or unload request's `parameters`, each checked; Triton's
 * `config` and `file:` overrides are refused, others ignored, as Triton ignores what it does not know.
 */
export function repositoryParameters(raw: unknown): RepositoryParameters {
  if (raw === undefined || raw === null) return {};
  if (!isObject(raw)) throw usage('"parameters" must be an object');
  // Triton's own load parameters would change the model; ignored, the load would look as if it had.
  const override = Object.keys(raw).find((key) => key === 'config' || key.startsWith('file:'));
  if (override !== undefined) {
    throw new MaasError('MAAS_BAD_INPUT', `"${clipped(override)}" overrides Triton's model configuration or files, which maas does not take in a load`, {
      hint: 'A version\'s batching and instances come from `maas serve` flags and maas.yaml; register new files as a new version (maas register), then load it with "version".',
    });
  }
  const version = raw.version;
  if (version !== undefined && !(typeof version === 'string' && /^[a-z0-9][a-z0-9._-]{0,99}$/.test(version)) && !(Number.isSafeInteger(version) && (version as number) > 0)) {
    throw usage('"version" must be a version number or an alias');
  }
  const source = raw.source;
  if (source !== undefined && (typeof source !== 'string' || source.length > 2048)) throw usage('"source" must be an oci:// reference');
  return { version: version === undefined ? undefined : String(version), source: source as string | undefined };
}

/** Management answers only to a caller who could be told apart from anyone: a token, or loopback. */
export function checkManagement(core: ServingCore): void {
  if (core.managementRefused) throw new MaasError('MAAS_FORBIDDEN', core.managementRefused, { hint: 'Restart the server with --token (or MAAS_TOKEN) to manage it from the network.' });
}

export function repositoryIndex(core: ServingCore, readyOnly: boolean): VersionStatus[] {
  checkManagement(core);
  const index = core.manager().index();
  return readyOnly ? index.filter((s) => s.state === 'READY') : index;
}

export async function repositoryLoad(core: ServingCore, name: string, parameters: RepositoryParameters): Promise<VersionStatus[]> {
  checkManagement(core);
  let version = parameters.version;
  if (parameters.source !== undefined) {
    // A path on the server's disk is not the client's to name: only registry references.
    if (!parameters.source.startsWith('oci://')) throw usage(`"source" must be an oci:// reference, not '${clipped(parameters.source)}'`);
    const pulled = await core.pull(parameters.source, name);
    version = String(pulled.version);
  }
  return core.manager().load(name, version);
}

export async function repositoryUnload(core: ServingCore, name: string, parameters: RepositoryParameters): Promise<VersionStatus[]> {
  checkManagement(core);
  if (parameters.source !== undefined) throw usage('"source" is for loads');
  return core.manager().unload(name, parameters.version);
}
