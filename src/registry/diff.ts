/** `maas diff A B`: what changed between two versions, and whether clients would break. */
import { MaasError } from '../core/errors.js';
import { diffSignatures, type SignatureChange } from '../onnx/signature-diff.js';
import { type MachineFingerprint, type VersionProfile, readProfiles } from './profiles.js';
import { ANNOTATIONS } from './manifest.js';
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

/** A latency at one batch size on A and on B, and B's change in percent of A (positive: B is slower). */
export interface LatencyDelta {
  a: number;
  b: number;
  changePct: number;
}

export interface LatencyChange {
  batch: number;
  p50Ms: LatencyDelta;
  p99Ms: LatencyDelta;
}

/** A's and B's profiles from one machine fingerprint, compared at the batch sizes both measured. */
export interface LatencyComparison {
  machineId: string;
  machine: MachineFingerprint;
  /** when each side was measured. */
  aAt: string;
  bAt: string;
  batches: LatencyChange[];
}

/** `--fail-on-regression`'s verdict: B's p50 more than `thresholdPct` above A's at some batch size, on some common machine. */
export interface RegressionCheck {
  thresholdPct: number;
  regressed: boolean;
  /** the largest p50 change found. */
  worst: { machineId: string; batch: number; changePct: number };
}

export interface DiffResult {
  a: DiffSide;
  b: DiffSide;
  sameBytes: boolean;
  sameGraph: boolean;
  signatureChanges: SignatureChange[];
  otherChanges: string[];
  /** external data files that differ (the graph file's digest is the version's): their digest on each side, undefined where absent. */
  dataFiles: { path: string; a: string | undefined; b: string | undefined }[];
  breaking: boolean;
  /** one entry per machine fingerprint both versions have a profile from (`maas bench`); [] when none. */
  latency: LatencyComparison[];
  /** only when a regression threshold was asked for. */
  regression?: RegressionCheck;
}

export interface DiffOptions {
  a: string;
  b: string;
  /** judge B's p50 against A's: more than this many percent slower at any common batch size is a regression. */
  regressionPct?: number | undefined;
}

const delta = (a: number, b: number): LatencyDelta => ({ a, b, changePct: a > 0 ? Number(((b / a - 1) * 100).toFixed(1)) : 0 });

/** The profiles of A and B from the same machines, compared at their common measured batch sizes; most recent B first. */
export function compareProfiles(a: VersionProfile[], b: VersionProfile[]): LatencyComparison[] {
  const comparisons: LatencyComparison[] = [];
  for (const pb of b) {
    const pa = a.find((p) => p.machineId === pb.machineId);
    if (!pa) continue;
    const batches: LatencyChange[] = [];
    for (const sb of pb.batches) {
      const sa = pa.batches.find((s) => s.batch === sb.batch);
      if (sb.status !== 'ok' || sa?.status !== 'ok') continue;
      batches.push({ batch: sb.batch, p50Ms: delta(sa.p50Ms, sb.p50Ms), p99Ms: delta(sa.p99Ms, sb.p99Ms) });
    }
    if (batches.length) comparisons.push({ machineId: pb.machineId, machine: pb.machine, aAt: pa.at, bAt: pb.at, batches: batches.sort((x, y) => x.batch - y.batch) });
  }
  return comparisons.sort((x, y) => (x.bAt < y.bAt ? 1 : x.bAt > y.bAt ? -1 : 0));
}

/** The verdict of a threshold over the comparisons; undefined when there is nothing to judge. */
export function checkRegression(latency: LatencyComparison[], thresholdPct: number): RegressionCheck | undefined {
  let worst: RegressionCheck['worst'] | undefined;
  for (const c of latency) {
    for (const change of c.batches) {
      if (!worst || change.p50Ms.changePct > worst.changePct) worst = { machineId: c.machineId, batch: change.batch, changePct: change.p50Ms.changePct };
    }
  }
  return worst && { thresholdPct, regressed: worst.changePct > thresholdPct, worst };
}

/** Each stored file of a version by its path in the version, to its digest. */
function filesOf(record: VersionRecord): Map<string, string> {
  return new Map(record.manifest.layers.map((l) => [l.annotations?.[ANNOTATIONS.filepath] ?? '', l.digest]));
}

function graphPath(record: VersionRecord): string {
  return record.manifest.layers[0]!.annotations?.[ANNOTATIONS.filepath] ?? '';
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

export async function diffVersions(options: DiffOptions, ctx: RegistryOptions): Promise<DiffResult> {
  const registry = await Registry.open(ctx);
  const read = (text: string) => {
    const { name, version } = registry.resolve(parseRef(text));
    return registry.readVersion(name, version);
  };
  const [ra, rb] = [read(options.a), read(options.b)];
  const [a, b] = [side(ra), side(rb)];
  const signatureChanges = diffSignatures(ra.onnx.signature, rb.onnx.signature);
  const otherChanges: string[] = [];
  const change = (label: string, from: string, to: string) => otherChanges.push(`${label.padEnd(12)} ${from} → ${to}`);
  if (a.opsets !== b.opsets) change('opsets', a.opsets, b.opsets);
  if (a.parameterCount !== b.parameterCount) change('parameters', a.parameterCount.toLocaleString('en-US'), b.parameterCount.toLocaleString('en-US'));
  if (ra.onnx.irVersion !== rb.onnx.irVersion) change('IR version', String(ra.onnx.irVersion), String(rb.onnx.irVersion));
  // The graph file's digest is the version's digest: external data files are compared one by one.
  const [filesA, filesB] = [filesOf(ra), filesOf(rb)];
  const dataFiles = [...new Set([...filesA.keys(), ...filesB.keys()])]
    .filter((path) => path !== graphPath(ra) && path !== graphPath(rb))
    .map((path) => ({ path, a: filesA.get(path), b: filesB.get(path) }))
    .filter((f) => f.a !== f.b);
  const [profilesA, profilesB] = [readProfiles(registry, ra), readProfiles(registry, rb)];
  const latency = compareProfiles(profilesA, profilesB);
  let regression: RegressionCheck | undefined;
  if (options.regressionPct !== undefined) {
    regression = checkRegression(latency, options.regressionPct);
    if (!regression) {
      const count = (n: number) => `${n} profile${n === 1 ? '' : 's'}`;
      throw new MaasError('MAAS_USAGE', `no latency profiles of ${a.ref} and ${b.ref} from the same machine to compare (${a.ref} has ${count(profilesA.length)}, ${b.ref} ${count(profilesB.length)})`, {
        hint: `Run \`maas bench ${a.ref}\` and \`maas bench ${b.ref}\` on the same machine (same device and batch sizes, both in-process or both through the same server), then diff again.`,
        details: { a: profilesA.map((p) => p.machineId), b: profilesB.map((p) => p.machineId) },
      });
    }
  }
  return {
    a,
    b,
    sameBytes: a.digest === b.digest && dataFiles.length === 0,
    sameGraph: a.graphFingerprint === b.graphFingerprint,
    signatureChanges,
    otherChanges,
    dataFiles,
    breaking: signatureChanges.some((c) => c.breaking),
    latency,
    ...(regression ? { regression } : {}),
  };
}
