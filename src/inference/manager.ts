/**
 * The ModelManager: which model versions are loaded, and which one a request means. It owns
 * the runtimes whatever transport asks (REST, gRPC, predict). What is served: for a model named
 * with a version or alias, that version (an alias or `latest` follows its moves); for a model
 * named alone, or every model when none is named, the versions its version policy selects.
 * A poll of the registry picks up new versions, removals and alias moves: a new version is
 * loaded, the routes swap in one assignment, the old version drains its queue and in-flight
 * requests, then unloads. No request is dropped.
 */
import { MaasError, isMaasError, messageOf } from '../core/errors.js';
import type { RegistryConfig } from '../registry/config.js';
import { selectVersions } from '../registry/policy.js';
import type { Selector } from '../registry/refs.js';
import { Registry, type RegistryOptions } from '../registry/registry.js';
import { checkBlobs, modelPath } from '../registry/serve-cache.js';
import type { ModelServing } from './config.js';
import { ModelRuntime, type RuntimeObserver } from './runtime.js';

export interface Route {
  name: string;
  /** the version `/v2/models/NAME` answers with. */
  defaultVersion: number;
  versions: Map<number, ModelRuntime>;
  aliases: Map<string, number>;
}

export type ServeEvent =
  /** `runUs`: the warm-up's median one-row run, where measured; `inline`: small requests run on the main thread. */
  | { event: 'loaded'; model: string; version: number; provider: string; loadMs: number; runUs?: number; inline: boolean }
  | { event: 'unloaded'; model: string; version: number }
  | { event: 'swapped'; model: string; from: number | undefined; to: number }
  /** `serving`: the version still served under the name, if any. */
  | { event: 'load-failed'; model: string; version: number; serving: number | undefined; error: string }
  | { event: 'refresh-failed'; error: string };

/** A model to serve: with a selector, the version it names; without, what its policy selects. */
export interface ServeTarget {
  name: string;
  selector?: Selector | undefined;
}

export interface ManagerOptions {
  registry: RegistryOptions;
  /** what to serve; empty = every model, each by its policy. */
  targets: ServeTarget[];
  /** a model's version policy and runtime settings, from the flags and maas.yaml of the moment. */
  serving: (name: string, config: RegistryConfig) => ModelServing;
  observer: (model: string, version: number) => RuntimeObserver;
  log: (event: ServeEvent) => void;
}

interface Desired {
  name: string;
  defaultVersion: number;
  versions: Set<number>;
  aliases: Map<string, number>;
}

/** A device that cannot load anything fails the start; a broken version only leaves itself out. */
function isDeviceFailure(error: unknown): boolean {
  return isMaasError(error) && error.code === 'MAAS_DEVICE_UNAVAILABLE';
}

/** Failed loads are retried on later polls, but not more often than this. */
const RETRY_FAILED_MS = 30_000;

export class ModelManager {
  private routes = new Map<string, Route>();
  private readonly runtimes = new Map<string, ModelRuntime>();
  private readonly failed = new Map<string, number>();
  private refreshing: Promise<void> | undefined;
  private poller: NodeJS.Timeout | undefined;
  ready = false;

  private constructor(private readonly registry: Registry, private readonly options: ManagerOptions) {}

  static async open(options: ManagerOptions): Promise<ModelManager> {
    const repository = new ModelManager(await Registry.open(options.registry), options);
    await repository.refresh({ initial: true });
    repository.ready = true;
    return repository;
  }

  route(name: string): Route | undefined {
    return this.routes.get(name);
  }

  allRoutes(): Route[] {
    return [...this.routes.values()];
  }

  /** Resolves `/models/NAME[/versions/V]`, V being a version number or an alias. */
  resolve(name: string, version?: string): ModelRuntime {
    const route = this.routes.get(name);
    if (!route) {
      throw new MaasError('MAAS_MODEL_NOT_FOUND', `model '${name}' is not served here`, { hint: `Served models: ${[...this.routes.keys()].join(', ') || 'none'}.` });
    }
    const wanted = version === undefined ? route.defaultVersion : /^\d+$/.test(version) ? Number(version) : route.aliases.get(version);
    const runtime = wanted === undefined ? undefined : route.versions.get(wanted);
    if (!runtime) {
      throw new MaasError('MAAS_VERSION_NOT_FOUND', `model '${name}' has no served version '${version}'`, {
        hint: `Served: ${[...route.versions.keys(), ...route.aliases.keys()].join(', ')}.`,
      });
    }
    return runtime;
  }

  startPolling(intervalMs: number): void {
    this.poller = setInterval(() => {
      // A registry mid-edit (a model removed, maas.yaml broken) keeps what is served; say why.
      void this.refresh({ initial: false }).catch((error: unknown) => this.options.log({ event: 'refresh-failed', error: messageOf(error) }));
    }, intervalMs);
    this.poller.unref();
  }

  /** Stops polling, waits for every queued and running request, unloads every version. */
  async close(): Promise<void> {
    clearInterval(this.poller);
    await this.refreshing;
    const runtimes = [...this.runtimes.values()];
    this.routes = new Map();
    await Promise.all(runtimes.map((r) => r.drain()));
    await Promise.all(runtimes.map((r) => r.close()));
    this.runtimes.clear();
  }

  refresh({ initial }: { initial: boolean }): Promise<void> {
    this.refreshing ??= this.apply(initial).finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }

  private desired(): Desired[] {
    const config = this.registry.reloadConfig();
    const targets: ServeTarget[] = this.options.targets.length ? this.options.targets : this.registry.modelNames().map((name) => ({ name }));
    const byName = new Map<string, Desired>();
    for (const target of targets) {
      const versions = target.selector
        ? [this.registry.resolve({ name: target.name, selector: target.selector }).version]
        : this.policyVersions(target.name, config);
      if (versions.length === 0) continue;
      const entry = byName.get(target.name) ?? { name: target.name, defaultVersion: versions.at(-1)!, versions: new Set<number>(), aliases: new Map<string, number>() };
      for (const v of versions) entry.versions.add(v);
      byName.set(target.name, entry);
    }
    for (const entry of byName.values()) {
      for (const [alias, v] of Object.entries(this.registry.aliases(entry.name))) if (entry.versions.has(v)) entry.aliases.set(alias, v);
    }
    return [...byName.values()];
  }

  /** The versions of `name` its policy selects; none when the model is gone (a named one is an error). */
  private policyVersions(name: string, config: RegistryConfig): number[] {
    const registered = this.registry.versions(name);
    if (registered.length === 0 && this.options.targets.length) this.registry.resolve({ name, selector: { kind: 'latest' } }); // throws not found
    const { policy } = this.options.serving(name, config);
    return selectVersions(policy, registered, this.registry.aliases(name));
  }

  /** The runtime settings a version loads with. */
  private runtimeOptions(name: string) {
    return this.options.serving(name, this.registry.config).runtime;
  }

  private async apply(initial: boolean): Promise<void> {
    const desired = this.desired();
    const next = new Map<string, Route>();
    let firstFailure: unknown;
    for (const want of desired) {
      const versions = new Map<number, ModelRuntime>();
      for (const version of want.versions) {
        const runtime = await this.runtimeFor(want.name, version, initial).catch((error: unknown) => {
          if (isDeviceFailure(error)) throw error;
          firstFailure ??= error;
          return undefined;
        });
        if (runtime) versions.set(version, runtime);
      }
      const previous = this.routes.get(want.name);
      // A version that failed to load keeps the old one serving under its name.
      const defaultVersion = versions.has(want.defaultVersion) ? want.defaultVersion : previous?.defaultVersion;
      if (defaultVersion === undefined) continue;
      if (!versions.has(defaultVersion) && previous?.versions.has(defaultVersion)) versions.set(defaultVersion, previous.versions.get(defaultVersion)!);
      const aliases = new Map([...want.aliases].filter(([, v]) => versions.has(v)));
      next.set(want.name, { name: want.name, defaultVersion, versions, aliases });
      if (!initial && previous?.defaultVersion !== defaultVersion) this.options.log({ event: 'swapped', model: want.name, from: previous?.defaultVersion, to: defaultVersion });
    }
    // At start, a version that cannot load is left out and the others serve, unless none can.
    if (initial && next.size === 0 && firstFailure !== undefined) throw firstFailure;
    this.routes = next;
    const routed = new Set([...next.values()].flatMap((r) => [...r.versions.keys()].map((v) => `${r.name}@${v}`)));
    await Promise.all([...this.runtimes.entries()].filter(([key]) => !routed.has(key)).map(async ([key, runtime]) => {
      this.runtimes.delete(key);
      await runtime.drain();
      await runtime.close();
      this.options.log({ event: 'unloaded', model: runtime.name, version: runtime.version });
    }));
  }

  private async runtimeFor(name: string, version: number, initial: boolean): Promise<ModelRuntime | undefined> {
    const key = `${name}@${version}`;
    const loaded = this.runtimes.get(key);
    if (loaded) return loaded;
    const failedAt = this.failed.get(key);
    if (failedAt !== undefined && Date.now() - failedAt < RETRY_FAILED_MS) return undefined;
    try {
      const record = this.registry.readVersion(name, version);
      await checkBlobs(this.registry, record);
      const runtime = await ModelRuntime.load(
        { name, version, signature: record.onnx.signature, modelPath: modelPath(this.registry, record) },
        this.runtimeOptions(name),
        this.options.observer(name, version),
      );
      this.runtimes.set(key, runtime);
      this.failed.delete(key);
      this.options.log({ event: 'loaded', model: name, version, provider: runtime.provider, loadMs: Math.round(runtime.loadMs), ...(runtime.probeUs === undefined ? {} : { runUs: Math.round(runtime.probeUs) }), inline: runtime.runsInline });
      return runtime;
    } catch (error) {
      if (initial && isDeviceFailure(error)) throw error;
      this.failed.set(key, Date.now());
      this.options.log({ event: 'load-failed', model: name, version, serving: this.routes.get(name)?.defaultVersion, error: messageOf(error) });
      if (initial) throw error;
      return undefined;
    }
  }
}
