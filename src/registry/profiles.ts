/**
 * Latency profiles beside a version: `models/<name>/<version>/profiles.json`, written by
 * `maas bench`. One entry per machine fingerprint (the machine, onnxruntime, the execution
 * provider, in-process or through a server); profiling again on the same machine replaces that
 * entry. Each entry names the manifest digest it measured, so a profile is never read as one
 * of other bytes. The file goes with its version: `maas rm` removes the version's folder.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MaasError } from '../core/errors.js';
import { formatRef } from './refs.js';
import type { Registry, VersionRecord } from './registry.js';

export const PROFILES_FILE = 'profiles.json';

export type BenchMode = 'in-process' | 'server';

/** What a latency depends on besides the model: two profiles compare only when these are equal. */
export interface MachineFingerprint {
  /** os.cpus()[0].model of the machine that ran the loop (with a server on another host: the client's). */
  cpu: string;
  /** logical cores (os.availableParallelism()). */
  cores: number;
  /** the onnxruntime-node version here. */
  onnxruntime: string;
  /** the execution provider that ran the model: cpu, cuda, webgpu; `unknown` when a server did not say. */
  provider: string;
  mode: BenchMode;
  /** process.version. */
  node: string;
  /** mode `server`: the server's host name (no port: a loopback server on another port is the same machine). */
  server?: string;
}

/** One batch size's latency, client side: from the request to its complete answer. */
export interface BatchStats {
  batch: number;
  status: 'ok';
  /** requests timed (after the warm-up). */
  requests: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  meanMs: number;
  minMs: number;
  maxMs: number;
  rowsPerSec: number;
  requestsPerSec: number;
}

/** A batch size the model cannot take (a fixed first dim, or a run that refused it). */
export interface SkippedBatch {
  batch: number;
  status: 'skipped';
  reason: string;
}

export type BatchProfile = BatchStats | SkippedBatch;

export interface VersionProfile {
  /** the manifest digest of the version measured. */
  manifestDigest: string;
  /** a short digest of `machine`: equal ids, comparable profiles. */
  machineId: string;
  machine: MachineFingerprint;
  /** when it was measured (ISO 8601). */
  at: string;
  /** measuring time per batch size, after the warm-up. */
  durationMs: number;
  /** onnxruntime intra-op threads (in-process); undefined through a server. */
  threads?: number;
  batches: BatchProfile[];
}

/** A stable short id of a fingerprint: sha256 over its fields in a fixed order. */
export function machineIdOf(machine: MachineFingerprint): string {
  const canonical = JSON.stringify([machine.cpu, machine.cores, machine.onnxruntime, machine.provider, machine.mode, machine.node, machine.server ?? null]);
  return createHash('sha256').update(canonical).digest('hex').slice(0, 16);
}

/** The profiles file of a version, relative to the registry root. */
export function profilesPath(registry: Registry, name: string, version: number): string {
  return `${registry.layout.versionDir(name, version)}/${PROFILES_FILE}`;
}

function isProfile(value: unknown): value is VersionProfile {
  if (!value || typeof value !== 'object') return false;
  const p = value as Partial<VersionProfile>;
  return typeof p.manifestDigest === 'string' && typeof p.machineId === 'string' && typeof p.at === 'string'
    && !!p.machine && typeof p.machine === 'object' && Array.isArray(p.batches)
    && p.batches.every((b) => b && typeof b === 'object' && typeof b.batch === 'number' && (b.status === 'ok' || b.status === 'skipped'));
}

/** Every profile stored for a version, from all machines, those of other bytes left out; none: []. */
export function readProfiles(registry: Registry, record: Pick<VersionRecord, 'name' | 'version' | 'manifestDigest'>): VersionProfile[] {
  const rel = profilesPath(registry, record.name, record.version);
  const path = join(registry.root, rel);
  if (!existsSync(path)) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    parsed = undefined;
  }
  if (!Array.isArray(parsed) || !parsed.every(isProfile)) {
    throw new MaasError('MAAS_CONFIG_INVALID', `${rel} is not a list of latency profiles`, {
      hint: `Restore it with \`git checkout -- ${rel}\`, or delete it and run \`maas bench ${formatRef(record.name, record.version)}\` again.`,
    });
  }
  return parsed.filter((p) => p.manifestDigest === record.manifestDigest);
}

export interface RecordProfileResult {
  /** where it is stored, relative to the registry root. */
  path: string;
  /** a profile from the same machine fingerprint was there and is replaced. */
  replaced: boolean;
  commit?: string;
}

/**
 * Stores `profile` beside its version in one commit with a history entry, replacing the entry of
 * the same machine. Refused when the version was removed or is other bytes by now.
 */
export async function recordProfile(registry: Registry, name: string, version: number, profile: VersionProfile): Promise<RecordProfileResult> {
  const ref = formatRef(name, version);
  return registry.transact(`profile ${ref} (${profile.machine.provider}, ${profile.machine.mode}, machine ${profile.machineId})`, async (tx) => {
    registry.resolve({ name, selector: { kind: 'version', version } }); // throws when removed meanwhile
    const record = registry.readVersion(name, version);
    if (record.manifestDigest !== profile.manifestDigest) {
      throw new MaasError('MAAS_VERSION_CONFLICT', `${ref} changed while it was measured (manifest ${record.manifestDigest}, measured ${profile.manifestDigest})`, {
        hint: `Run \`maas bench ${ref}\` again.`,
      });
    }
    const existing = readProfiles(registry, record);
    const replaced = existing.some((p) => p.machineId === profile.machineId);
    const next = [...existing.filter((p) => p.machineId !== profile.machineId), profile].sort((a, b) => (a.machineId < b.machineId ? -1 : a.machineId > b.machineId ? 1 : 0));
    const path = profilesPath(registry, name, version);
    tx.write(path, `${JSON.stringify(next, null, 2)}\n`);
    tx.record({ at: registry.now().toISOString(), action: 'profile', model: name, version, digest: record.manifestDigest, machine: profile.machineId });
    return { path, replaced };
  });
}
