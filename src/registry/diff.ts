/** `maas diff A B`: what changed between two versions, and whether clients would break. */
import { diffSignatures, type SignatureChange } from '../onnx/signature-diff.js';
import { formatRef, parseRef } from './refs.js';
import { Registry, type RegistryOptions, type VersionRecord } from './registry.js';

export interface DiffSide {
  ref: string;
  digest: string;
  graphFingerprint: string;
  size: number;
  parameterCount: number;
  opsets: string;
}

export interface DiffResult {
  a: DiffSide;
  b: DiffSide;
  sameBytes: boolean;
  sameGraph: boolean;
  signatureChanges: SignatureChange[];
  otherChanges: string[];
  breaking: boolean;
}

function side(record: VersionRecord): DiffSide {
  const { onnx } = record;
  return {
    ref: formatRef(record.name, record.version),
    digest: record.manifest.layers[0]!.digest,
    graphFingerprint: onnx.graphFingerprint,
    size: record.manifest.layers.reduce((n, l) => n + l.size, 0),
    parameterCount: onnx.parameterCount,
    opsets: onnx.opsetImports.map((o) => `${o.domain || 'ai.onnx'}:${o.version}`).join(','),
  };
}

export async function diffVersions(options: { a: string; b: string }, ctx: RegistryOptions): Promise<DiffResult> {
  const registry = await Registry.open(ctx);
  const read = (text: string) => {
    const { name, version } = registry.resolve(parseRef(text));
    return registry.readVersion(name, version);
  };
  const [ra, rb] = [read(options.a), read(options.b)];
  const [a, b] = [side(ra), side(rb)];
  const signatureChanges = diffSignatures(ra.onnx.signature, rb.onnx.signature);
  const otherChanges: string[] = [];
  if (a.opsets !== b.opsets) otherChanges.push(`opsets ${a.opsets} → ${b.opsets}`);
  if (a.parameterCount !== b.parameterCount) otherChanges.push(`parameters ${a.parameterCount} → ${b.parameterCount}`);
  if (ra.onnx.irVersion !== rb.onnx.irVersion) otherChanges.push(`IR version ${ra.onnx.irVersion} → ${rb.onnx.irVersion}`);
  return {
    a,
    b,
    sameBytes: a.digest === b.digest,
    sameGraph: a.graphFingerprint === b.graphFingerprint,
    signatureChanges,
    otherChanges,
    breaking: signatureChanges.some((c) => c.breaking),
  };
}
