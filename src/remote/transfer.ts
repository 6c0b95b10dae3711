/** `maas push` and `maas pull`: a version to and from an OCI registry or an OCI image layout. */
import type { Env } from '../core/context.js';
import { MaasError } from '../core/errors.js';
import { VERSION } from '../core/version.js';
import { versionTag } from '../registry/layout.js';
import { type AttestationKind, listAttestations } from '../registry/attestations.js';
import { ANNOTATIONS, type Descriptor, MAX_MANIFEST_BYTES, digestOf } from '../registry/manifest.js';
import { assertModelName, formatRef, parseRef, suggestName } from '../registry/refs.js';
import { Registry, type RegistryOptions } from '../registry/registry.js';
import { corruptBlob } from '../registry/serve-cache.js';
import type { OnBytes } from '../registry/store.js';
import { type Admission, MANIFEST_MEDIA_TYPE, type ReceivedAttestation, importArtifact, readArtifact, type ImportResult, type ImportSource } from './artifact.js';
import { DEFAULT_IDLE_TIMEOUT_MS, RegistryClient } from './client.js';
import { credentialsFor } from './credentials.js';
import { type ImageSource, type ImageTarget, type ModelcarResult, checkBase, pushModelcar } from './modelcar.js';
import { OciLayout } from './layout.js';
import { configuredRemote, resolveRemoteName } from './named.js';
import { type PushedReferrers, fetchLayoutReferrers, fetchReferrers, pushLayoutReferrers, pushReferrers } from './referrers.js';
import { type RemoteRef, isLoopback, parseRemote, referenceOf, withRepository } from './ref.js';

export interface TransferContext extends RegistryOptions {
  fetch?: typeof fetch;
  /** for tests: shorter retry waits. */
  sleep?: (ms: number) => Promise<void>;
}

export interface PushOptions {
  ref: string;
  remote?: string | undefined;
  /** also tag every alias that points at the version. */
  aliases?: boolean;
  plainHttp?: boolean;
  /** also push the registry's git commits and the version tag to its git remote. */
  git?: boolean;
  /** also push the version as a KServe modelcar image under `<tag>-modelcar` (modelcar.ts). */
  modelcar?: boolean;
  /** the modelcar's base image (one with a shell, for KServe's `oci://`): oci://HOST/REPO:TAG or oci-layout:PATH:TAG. */
  modelcarBase?: string | undefined;
  onProgress?: (label: string, total: number) => OnBytes;
}

export interface PushResult {
  ref: string;
  remote: string;
  manifestDigest: string;
  tags: string[];
  blobs: number;
  blobsSkipped: number;
  bytesSent: number;
  durationMs: number;
  /** the git remote the commits and tag went to, with --git. */
  gitRemote?: string;
  /** the version's signatures, provenance and SBOMs, sent as referrers of its manifest. */
  referrers?: PushedReferrers;
  /** with --modelcar. */
  modelcar?: ModelcarResult;
}

const USER_AGENT = `maas/${VERSION} (${process.platform}-${process.arch}; Node ${process.version})`;

/** $MAAS_REMOTE_TIMEOUT_S: seconds a remote request may go without a byte (tests set it short). */
function idleTimeoutMs(env: Env): number {
  const text = env.MAAS_REMOTE_TIMEOUT_S;
  if (text === undefined || text === '') return DEFAULT_IDLE_TIMEOUT_MS;
  const seconds = Number(text);
  if (!Number.isFinite(seconds) || seconds <= 0 || seconds > 86_400) {
    throw new MaasError('MAAS_USAGE', `MAAS_REMOTE_TIMEOUT_S='${text}' is not a number of seconds`, { hint: 'Set it to a positive number such as 30, or unset it.' });
  }
  return seconds * 1000;
}

export function clientFor(remote: Extract<RemoteRef, { kind: 'registry' }>, ctx: TransferContext, plainHttp: boolean | undefined): RegistryClient {
  return new RegistryClient({
    idleTimeoutMs: idleTimeoutMs(ctx.env),
    host: remote.host,
    repository: remote.repository,
    plainHttp: Boolean(plainHttp) || isLoopback(remote.host),
    credentials: credentialsFor(remote.host, ctx.env),
    userAgent: USER_AGENT,
    ...(ctx.fetch ? { fetch: ctx.fetch } : {}),
    ...(ctx.sleep ? { sleep: ctx.sleep } : {}),
  });
}

/** The remote a command names, or maas.yaml's defaults.remote; named remotes resolved. */
function remoteOf(registry: Registry, given: string | undefined, hint = 'Name one: maas push NAME@VERSION oci://HOST/REPOSITORY (or oci-layout:PATH), or set defaults.remote in maas.yaml (oci://HOST/NAMESPACE: each model goes to NAMESPACE/NAME).'): RemoteRef {
  const configured = registry.config.defaults.remote ?? undefined;
  const text = given !== undefined
    ? resolveRemoteName(given, registry.config.remotes, registry.layout.root)
    : configured === undefined ? undefined : configuredRemote(resolveRemoteName(configured, registry.config.remotes), registry.layout.root);
  if (!text) throw new MaasError('MAAS_USAGE', 'no remote given and maas.yaml has no defaults.remote', { hint });
  return parseRemote(text);
}

/**
 * Where model NAME goes. A remote given on the command line is that repository (a bare host takes
 * the model's name). maas.yaml's defaults.remote serves every model of the registry, so it is a
 * namespace: each model goes to a repository of its name under it, where a version's tag names
 * that model's bytes and no other's.
 */
export function remoteFor(registry: Registry, given: string | undefined, name: string, hint?: string): RemoteRef {
  const remote = remoteOf(registry, given, hint);
  if (given !== undefined) return withRepository(remote, name);
  if (remote.kind === 'layout') return { ...remote, path: `${remote.path.replace(/\/+$/, '')}/${name}` };
  return { ...remote, repository: remote.repository ? `${remote.repository}/${name}` : name };
}

/** `--modelcar-base`: a tagged image on a registry (oci://HOST/REPO:TAG) or in a layout (oci-layout:PATH:TAG). */
export function baseImage(registry: Registry, text: string, ctx: TransferContext, plainHttp: boolean | undefined): ImageSource {
  const remote = parseRemote(resolveRemoteName(text, registry.config.remotes, registry.layout.root));
  const reference = referenceOf(remote);
  if (!reference || (remote.kind === 'registry' && !remote.repository)) {
    throw new MaasError('MAAS_USAGE', `--modelcar-base '${text}' names no image tag`, { hint: 'Name a fixed tag of an image with a shell, e.g. oci://registry.example.com/base/busybox:1.37.' });
  }
  if (remote.kind === 'layout') return { kind: 'layout', layout: new OciLayout(remote.path), reference, name: text };
  return { kind: 'registry', client: clientFor(remote, ctx, plainHttp), reference, name: `${remote.host}/${remote.repository}${remote.digest ? `@${remote.digest}` : `:${remote.tag}`}` };
}

/** A remote as the user writes it, without a tag. */
function remoteText(remote: RemoteRef): string {
  return remote.kind === 'layout' ? `oci-layout:${remote.path}` : `oci://${remote.host}/${remote.repository}`;
}

/** The repository's tag for this version number already names other bytes (exit 6). */
function numberTagTaken(remote: RemoteRef, tag: string, tagged: string, name: string, ours: string): MaasError {
  const where = remoteText(remote);
  const own = `${where}/${name}`;
  const ownAlready = (remote.kind === 'registry' ? remote.repository : remote.path).split('/').at(-1) === name;
  return new MaasError('MAAS_VERSION_CONFLICT', `${where}:${tag} already names another manifest (${tagged.slice(0, 19)}), not ${name}@${tag}'s (${ours.slice(0, 19)}); version tags are not moved`, {
    hint: ownAlready
      ? `Another registry's ${name}@${tag} was pushed there. Pull it (maas pull ${where}:${tag} --name ${name}-remote) to compare, or push this registry's versions to another repository.`
      : `Another model (or another registry's ${name}@${tag}) was pushed there. Give each model its own repository, e.g. ${own}.`,
    details: { tagged, manifestDigest: ours },
  });
}

export async function push(options: PushOptions, ctx: TransferContext): Promise<PushResult> {
  const started = Date.now();
  const registry = await Registry.open(ctx);
  const { name, version } = registry.resolve(parseRef(options.ref));
  const artifact = readArtifact(registry, name, version);
  const remote = remoteFor(registry, options.remote, name);
  if (remote.digest) throw new MaasError('MAAS_USAGE', `a push names tags, not a digest: '${remote.url}'`, { hint: `Push to ${remoteText(remote)}; the manifest's digest is what it is (maas show ${name}@${version} prints it).` });
  // A number tag is a version's own (pull reads it as that version): NAME@1 as :2 would say otherwise.
  if (remote.tag !== undefined && /^\d+$/.test(remote.tag) && remote.tag !== String(version)) {
    throw new MaasError('MAAS_USAGE', `${remoteText(remote)}:${remote.tag} is version ${remote.tag}'s tag, not ${name}@${version}'s`, {
      hint: `Push ${name}@${remote.tag} there, or give ${name}@${version} a name tag (${remoteText(remote)}:stable); every push also tags the version's own number, :${version}.`,
    });
  }
  const aliases = options.aliases ? Object.entries(registry.aliases(name)).filter(([, v]) => v === version).map(([a]) => a) : [];
  const tags = [...new Set([String(version), ...(remote.tag ? [remote.tag] : []), ...aliases])];
  const manifest: Descriptor & { artifactType: string } = {
    mediaType: MANIFEST_MEDIA_TYPE, digest: artifact.manifestDigest, size: artifact.manifestBytes.length, artifactType: artifact.manifest.artifactType,
  };
  let blobsSkipped = 0;
  let bytesSent = 0;
  const progress = (d: Descriptor) => options.onProgress?.(`Pushing ${d.annotations?.[ANNOTATIONS.filepath] ?? 'config'}`, d.size);
  // Signatures, provenance and SBOMs go along as referrers of the manifest.
  const attestations = listAttestations(registry, name, version);
  let referrers: PushedReferrers | undefined;
  const base = options.modelcar && options.modelcarBase !== undefined ? baseImage(registry, options.modelcarBase, ctx, options.plainHttp) : undefined;
  if (base) await checkBase(base); // before anything is sent

  const target: ImageTarget = remote.kind === 'layout' ? { kind: 'layout', layout: new OciLayout(remote.path) } : { kind: 'registry', client: clientFor(remote, ctx, options.plainHttp) };
  // A registry answers its ping; a layout is made, or mended after a killed push, before its tags are read.
  if (target.kind === 'registry') await target.client.ping();
  else target.layout.ensure();
  // Stored blobs are not hashed in a pass of their own: the layout hashes as it copies, the
  // registry client as it reads (cancelling the upload before its final PUT). When either refuses
  // one, a blob damaged here is said as such (exit 8).
  const sendStored = async <T>(send: () => Promise<T>, blob: Descriptor): Promise<T> => {
    try {
      return await send();
    } catch (error) {
      if ((await registry.store.check(blob).catch(() => 'ok')) === 'corrupt') throw corruptBlob({ name, version }, blob.digest);
      throw error;
    }
  };
  // A version's number tag never moves. A remote with a repository path is used as is, so on a
  // repository several models share, another model's version N would be replaced without a word.
  const numberTag = String(version);
  const tagged = target.kind === 'layout' ? target.layout.taggedDigest(numberTag) : await target.client.taggedDigest(numberTag);
  if (tagged !== undefined && tagged !== artifact.manifestDigest) throw numberTagTaken(remote, numberTag, tagged, name, artifact.manifestDigest);

  if (target.kind === 'layout') {
    const { layout } = target;
    for (const blob of artifact.blobs) {
      const written = blob === artifact.manifest.config
        ? layout.putBlobBytes(artifact.configBytes, blob.digest)
        : await sendStored(() => layout.putBlobFile(registry.store.path(blob.digest), blob), blob);
      if (written) bytesSent += blob.size;
      else blobsSkipped++;
    }
    layout.putBlobBytes(artifact.manifestBytes, artifact.manifestDigest);
    layout.tag(manifest, tags);
    if (attestations.length) referrers = await pushLayoutReferrers(layout, manifest, attestations);
  } else {
    const { client } = target;
    for (const blob of artifact.blobs) {
      if (await client.hasBlob(blob)) {
        blobsSkipped++;
        continue;
      }
      if (blob === artifact.manifest.config) await client.uploadBytes(artifact.configBytes, blob);
      else await sendStored(() => client.uploadFile(registry.store.path(blob.digest), blob, progress(blob)), blob);
      bytesSent += blob.size;
    }
    for (const tag of tags) await client.putManifest(tag, artifact.manifestBytes);
    if (attestations.length) referrers = await pushReferrers(client, manifest, attestations);
  }
  const modelcar = options.modelcar
    ? await pushModelcar(registry, artifact, {
      target,
      repository: remote.kind === 'layout' ? remote.path : `${remote.host}/${remote.repository}`,
      tags,
      base,
      onProgress: options.onProgress,
    })
    : undefined;
  const gitRemote = options.git ? await registry.git.pushWithTags([versionTag(name, version)]) : undefined;
  return {
    ...(gitRemote ? { gitRemote } : {}),
    ...(modelcar ? { modelcar } : {}),
    ref: formatRef(name, version),
    remote: remoteText(remote),
    manifestDigest: artifact.manifestDigest,
    tags,
    blobs: artifact.blobs.length,
    blobsSkipped,
    bytesSent,
    ...(referrers ? { referrers } : {}),
    durationMs: Date.now() - started,
  };
}

export interface PullOptions {
  remote: string;
  name?: string | undefined;
  version?: number | undefined;
  plainHttp?: boolean;
  onProgress?: (label: string, total: number) => OnBytes;
  /** refuses the version before its blobs are fetched (a signature policy, say). */
  admit?: Admission | undefined;
}

export interface PullResult extends ImportResult {
  remote: string;
  /** signatures, provenance and SBOMs that came as referrers, by kind. */
  attestations: Partial<Record<AttestationKind, number>>;
  durationMs: number;
}

export async function pull(options: PullOptions, ctx: TransferContext): Promise<PullResult> {
  const started = Date.now();
  const registry = await Registry.open(ctx);
  const remote = parseRemote(resolveRemoteName(options.remote, registry.config.remotes, registry.layout.root));
  const reference = referenceOf(remote);
  if (!reference) throw new MaasError('MAAS_USAGE', `'${options.remote}' names no tag`, { hint: `Add the version, ${options.remote}:1, or pin a manifest, ${options.remote}@sha256:DIGEST.` });
  let source: ImportSource & { expectedDigest: string | undefined };
  let defaultName: string;
  let attestations: ReceivedAttestation[];
  if (remote.kind === 'layout') {
    const layout = new OciLayout(remote.path);
    const descriptor = layout.resolve(reference);
    if (descriptor.size > MAX_MANIFEST_BYTES) throw new MaasError('MAAS_REMOTE_REJECTED', `the manifest for '${reference}' claims ${descriptor.size} bytes (at most ${MAX_MANIFEST_BYTES})`, { hint: 'A maas manifest is a few KiB; this layout was not written by maas push.' });
    const chunks: Buffer[] = [];
    for await (const chunk of layout.readBlob(descriptor)) chunks.push(Buffer.from(chunk));
    source = { manifestBytes: Buffer.concat(chunks), blob: async (d: Descriptor) => layout.readBlob(d), expectedDigest: descriptor.digest };
    attestations = await fetchLayoutReferrers(layout, descriptor.digest);
    defaultName = suggestName(remote.path.split('/').filter(Boolean).pop() ?? 'model');
  } else {
    if (!remote.repository) throw new MaasError('MAAS_USAGE', `'${options.remote}' names no repository`, { hint: 'Write oci://HOST/REPOSITORY:TAG.' });
    const client = clientFor(remote, ctx, options.plainHttp);
    const manifest = await client.getManifest(reference);
    // A pinned digest is checked against the bytes, whatever digest the registry's header claims.
    source = { manifestBytes: manifest.bytes, blob: (d: Descriptor) => client.getBlob(d), expectedDigest: remote.digest ?? manifest.digest };
    attestations = await fetchReferrers(client, manifest.digest ?? digestOf(manifest.bytes));
    defaultName = remote.repository.split('/').pop()!;
  }
  const title = (() => {
    try {
      return (JSON.parse(source.manifestBytes.toString('utf8')) as { annotations?: Record<string, string> }).annotations?.[ANNOTATIONS.title];
    } catch {
      return undefined;
    }
  })();
  const name = options.name ?? title ?? defaultName;
  assertModelName(name);
  const result = await importArtifact(registry, source, {
    name,
    version: options.version,
    expectedDigest: source.expectedDigest,
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    attestations,
    admit: options.admit,
  });
  const counts: PullResult['attestations'] = {};
  for (const a of attestations) counts[a.kind] = (counts[a.kind] ?? 0) + 1;
  return { ...result, remote: remote.url, attestations: counts, durationMs: Date.now() - started };
}

export interface LoginResult {
  host: string;
  username: string;
  configPath: string;
}

/** `maas login`: checks the credentials against the registry, then stores them as docker does. */
export async function login(options: { host: string; username: string; password: string; plainHttp?: boolean }, ctx: TransferContext): Promise<LoginResult> {
  const { storeCredentials } = await import('./credentials.js');
  const remote = parseRemote(`oci://${options.host.replace(/^oci:\/\//, '')}`);
  if (remote.kind !== 'registry') throw new MaasError('MAAS_USAGE', 'login takes a registry host');
  const client = new RegistryClient({
    host: remote.host,
    repository: 'maas-login-check',
    plainHttp: Boolean(options.plainHttp) || isLoopback(remote.host),
    credentials: { username: options.username, password: options.password },
    userAgent: USER_AGENT,
    idleTimeoutMs: idleTimeoutMs(ctx.env),
    ...(ctx.fetch ? { fetch: ctx.fetch } : {}),
  });
  await client.ping();
  return { host: remote.host, username: options.username, configPath: storeCredentials(remote.host, options.username, options.password, ctx.env) };
}
