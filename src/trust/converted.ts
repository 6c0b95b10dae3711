/**
 * Provenance and signatures for what `register` and `convert` make: the in-toto provenance of a
 * conversion and, with a key (--sign-key or MAAS_SIGNING_KEY), its signature. The key is read
 * before the work starts, so a bad one fails before anything is registered or written.
 */
import { existsSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import type { Env } from '../core/context.js';
import { writeOutputFile } from '../core/fs.js';
import { type ConvertOptions, type ConvertResult, convertModel } from '../convert/convert.js';
import { registerConverted } from '../convert/register.js';
import { addAttestations } from '../registry/attestations.js';
import { ANNOTATIONS } from '../registry/manifest.js';
import { parseRef } from '../registry/refs.js';
import type { RegisterResult } from '../registry/register.js';
import { Registry, type RegistryOptions } from '../registry/registry.js';
import { hashFile } from '../registry/store.js';
import { type Attested, signedAs, signerHint } from './attest.js';
import { type ModelSigner, signModelFiles } from './model-signing.js';
import { conversionParameters, conversionProvenance, provenanceBytes } from './provenance.js';
import { findRegisteredSource } from './sbom.js';
import { type SigningFlags, signerFrom } from './sign.js';

/**
 * `maas register`, then the provenance of its conversion and its signature (with --sign-key or
 * MAAS_SIGNING_KEY). The key is read first: a bad one fails before anything is registered.
 */
export async function registerAttested(
  options: Parameters<typeof registerConverted>[0] & { signing: SigningFlags },
  ctx: RegistryOptions & { env: Env },
): Promise<RegisterResult & { attested?: Attested[] }> {
  const { signing, ...register } = options;
  const signer = await signerFrom(signing, ctx.cwd, ctx.env);
  const startedOn = ctx.now?.() ?? new Date();
  const registered = await registerConverted(register, ctx);
  const attested = await attestRegistered(registered, { signer, flags: register.convert ?? {}, startedOn }, ctx);
  return attested.length ? { ...registered, attested } : registered;
}

/** `maas convert`, then the provenance (and with a key, the signature) beside the file it wrote. */
export async function convertAttested(options: ConvertOptions & { signing: SigningFlags }, ctx: RegistryOptions & { env: Env }): Promise<ConvertResult & { attested: Attested[] }> {
  const { signing, ...convert } = options;
  const signer = await signerFrom(signing, ctx.cwd, ctx.env);
  const startedOn = ctx.now?.() ?? new Date();
  const result = await convertModel(convert, ctx);
  const { source, output: _output, onStep: _onStep, ...flags } = convert;
  return { ...result, attested: await attestConvertedFile(result, { source, signer, flags, startedOn }, ctx) };
}

/**
 * After a register: the provenance of its conversion (if it converted; signed with the key) and
 * the version's signature (with a key). A version registered before is only signed.
 */
export async function attestRegistered(
  registered: { name: string; version: number; status: 'registered' | 'unchanged' },
  options: { signer?: ModelSigner | undefined; flags: object; startedOn: Date },
  ctx: RegistryOptions,
): Promise<Attested[]> {
  const attested: Attested[] = [];
  const registry = await Registry.open(ctx);
  const { name, version } = registered;
  const record = registry.readVersion(name, version);
  const conversion = record.onnx.conversion;
  if (conversion && registered.status === 'registered') {
    const source = findRegisteredSource(registry, { name, version }, conversion.source.digest);
    const model = record.manifest.layers.find((l) => l.annotations?.[ANNOTATIONS.filepath] === record.onnx.modelFile);
    const statement = conversionProvenance({
      subject: [{ name: `${name}@${version}`, digest: record.manifestDigest }, ...(model ? [{ name: record.onnx.modelFile, digest: model.digest }] : [])],
      source: { name: conversion.source.file, digest: conversion.source.digest, graphFingerprint: conversion.source.graphFingerprint },
      sourceVersion: source ? { ref: `${source.name}@${source.version}`, manifestDigest: source.manifestDigest } : undefined,
      steps: conversion.steps,
      flags: conversionParameters(options.flags),
      accuracy: conversion.accuracy,
      forced: conversion.forced,
      startedOn: options.startedOn,
      finishedOn: registry.now(),
    });
    const added = await addAttestations(registry, name, version, record.manifestDigest, [{ kind: 'provenance', bytes: provenanceBytes(statement, options.signer) }]);
    const item = added.added[0] ?? added.present[0]!;
    attested.push({ kind: 'provenance', path: item.path, status: added.added.length ? 'added' : 'unchanged', ...(options.signer ? { keyHint: signerHint(options.signer) } : {}) });
  }
  if (options.signer) attested.push(await signedAs(`${name}@${version}`, options.signer, ctx));
  return attested;
}

/**
 * After `maas convert` wrote a file: its provenance beside it (`OUT.provenance.json`), and with a
 * key its signature (`OUT.sig`, the file as a one-file model in the model-signing format).
 */
export async function attestConvertedFile(
  result: ConvertResult,
  options: { source: string; signer?: ModelSigner | undefined; flags: object; startedOn: Date },
  ctx: RegistryOptions,
): Promise<Attested[]> {
  const output = result.output.path;
  const sourceVersion = await registeredSource(options.source, ctx);
  const source = result.exportedFrom ?? result.source;
  const statement = conversionProvenance({
    subject: [{ name: basename(output), digest: result.output.digest }],
    source: { name: sourceVersion ? options.source : source.path, digest: source.digest, graphFingerprint: result.source.graphFingerprint },
    sourceVersion,
    steps: result.steps,
    flags: conversionParameters(options.flags),
    accuracy: result.accuracy,
    forced: result.forced,
    startedOn: options.startedOn,
    finishedOn: ctx.now?.() ?? new Date(),
  });
  const attested: Attested[] = [];
  const provenancePath = `${output}.provenance.json`;
  writeOutputFile(provenancePath, provenanceBytes(statement, options.signer));
  attested.push({ kind: 'provenance', path: provenancePath, status: 'added', ...(options.signer ? { keyHint: signerHint(options.signer) } : {}) });
  if (options.signer) {
    const { digest } = await hashFile(output);
    const bundle = signModelFiles([{ name: basename(output), sha256: digest }], options.signer, { name: basename(output) });
    writeOutputFile(`${output}.sig`, `${JSON.stringify(bundle, null, 2)}\n`);
    attested.push({ kind: 'signature', path: `${output}.sig`, status: 'added', keyHint: signerHint(options.signer) });
  }
  return attested;
}

/** The registered version a `maas convert` source names (NAME@V rather than a file), if it does. */
async function registeredSource(source: string, ctx: RegistryOptions): Promise<{ ref: string; manifestDigest: string } | undefined> {
  // As convert reads its source: a file when one exists by that name, else a version.
  if (existsSync(resolve(ctx.cwd, source))) return undefined;
  const registry = await Registry.open(ctx);
  const { name, version } = registry.resolve(parseRef(source));
  return { ref: `${name}@${version}`, manifestDigest: registry.readVersion(name, version).manifestDigest };
}
