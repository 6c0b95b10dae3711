/**
 * The ModelManager: which model versions a server serves, which of them are loaded, and which
 * one a request means. It owns the runtimes whatever transport asks (REST, gRPC, predict).
 *
 * Served: for a model named with a version or alias, that version (an alias or `latest` follows
 * its moves); for a model named alone, or every model when none is named, the versions its
 * version policy selects; plus what the management API loaded or unloaded by hand.
 *
 * Loaded: without a memory budget every served version loads at start and on each poll, as
 * before. With `--memory-budget` or `--max-loaded-models`, versions load on their first request
 * (pinned ones at start), concurrent requests share one load, and a load that would exceed the
 * budget first unloads the least recently used idle, unpinned version. `keepAlive` unloads a
 * version idle that long; it loads again on its next request. Loads run one at a time, so the
 * process's resident-size growth around one is that version's memory.
 *
 * A poll of the registry picks up new versions, removals and alias moves: a new version loads,
 * the routes swap in one assignment, the old version drains its queue and in-flight requests,
 * then unloads. When the budget cannot hold both, the old one drains and unloads first and
 * requests wait for the new one (a `swap-wait` event). No request is dropped.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { MaasError, clipped, isMaasError, messageOf } from '../core/errors.js';
import { formatBytes, formatDuration } from '../core/units.js';
import type { Signature } from '../onnx/inspect.js';
import type { RegistryConfig } from '../registry/config.js';
import { type VersionPolicy, formatVersionPolicy, missingFromPolicy, selectVersions } from '../registry/policy.js';
import { LATEST, type Selector, formatModelRef } from '../registry/refs.js';
import { Registry, type RegistryOptions, type VersionRecord } from '../registry/registry.js';
import { checkBlobs, modelPath, readWarmup } from '../registry/serve-cache.js';
import { type ModelServing, SERVING_DEFAULTS } from './config.js';
import { decodeWarmup } from './protocol.js';
import { ModelRuntime, type RuntimeObserver } from './runtime.js';

/** Triton's model states, as the repository index reports them. */
export type VersionState = 'READY' | 'LOADING' | 'UNLOADING' | 'UNAVAILABLE';

/** Why a version left memory: evictions (memory, max_models, keep_alive) and the rest. */
export type UnloadReason = 'memory' | 'max_models' | 'keep_alive' | 'request' | 'policy' | 'shutdown';

/** A served version: what a request can name, loaded or not. */
export interface Slot {
  readonly name: string;
  readonly version: number;
  /** the version as text, for labels and answers. */
  readonly versionLabel: string;
  readonly signature: Signature;
  readonly digest: string;
  /** bytes of its files (model and external data). */
  readonly fileBytes: number;
  runtime: ModelRuntime | undefined;
  loading: Promise<ModelRuntime> | undefined;
  unloading: Promise<void> | undefined;
  /** ms since the epoch of the last request that reached it, or of its load if later. */
  lastUsed: number;
  /** the process's resident-size growth around its last load, in bytes. */
  residentBytes: number | undefined;
  /** why it is not loaded, when something made it so. */
  reason: string | undefined;
  /** unloaded through the management API: refused until loaded the same way. */
  held: boolean;
  /** evicted or idle past its keep-alive: it loads on its next request, not on the next poll. */
  lazy: boolean;
  failedAt: number | undefined;
  /** what its last failed load threw, for a management load to answer with. */
  failure: unknown;
  /** requests waiting for its load that have not queued their job yet: it is not idle. */
  waiting: number;
}

export interface Route {
  name: string;
  /** the version `/v2/models/NAME` answers with. */
  defaultVersion: number;
  versions: Map<number, Slot>;
  aliases: Map<string, number>;
}

/** One line of the repository index: Triton's fields, then what `maas ps` shows. */
export interface VersionStatus {
  name: string;
  version: string;
  state: VersionState;
  reason: string;
  digest: string;
  file_bytes: number;
  resident_bytes: number | null;
  device: string | null;
  pinned: boolean;
  in_flight: number;
  queued: number;
  /** ms since its last request, or since its load when no request came since. */
  idle_ms: number | null;
  /** ms until keep-alive unloads it; null when nothing will. */
  keep_alive_ms_left: number | null;
  load_ms: number | null;
}

export type ServeEvent =
  /** `runUs`: the warm-up's fastest one-row run, where measured; `inline`: small requests run on the main thread. */
  /** `warmupSamples`: the stored samples its warm-up ran (0: a generated request). */
  | { event: 'loaded'; model: string; version: number; provider: string; loadMs: number; warmupMs: number; warmupSamples: number; residentBytes: number; runUs?: number; inline: boolean; warmupError?: string }
  | { event: 'unloaded'; model: string; version: number; reason: UnloadReason }
  /** the version a request naming none gets moved; `kept`: the one it moved from is still served (by policy or alias). */
  | { event: 'swapped'; model: string; from: number | undefined; to: number; kept: boolean }
  /** the budget holds one of the two: requests to `model` wait while `from` unloads and `to` loads. */
  | { event: 'swap-wait'; model: string; from: number; to: number }
  /** `serving`: the version still served under the name, if any. */
  | { event: 'load-failed'; model: string; version: number; serving: number | undefined; error: string }
  | { event: 'refresh-failed'; error: string }
  /** a version measured above its estimate once loaded, and nothing idle left to evict: the budget is exceeded. */
  | { event: 'over-budget'; model: string; version: number; residentBytes: number; error: string }
  /** a policy's `specific` entries that name no registered version or alias (yet): served once they do. */
  | { event: 'policy-missing'; model: string; policy: string; missing: string[] }
  /** a served ref that no longer resolves (its alias deleted): what it served keeps answering. */
  | { event: 'target-unresolved'; target: string; model: string; error: string; serving: number[] }
  /** the signature policy versions are checked against before they load. */
  | { event: 'trust'; policy: string }
  /** a management load pulled its source into the served registry. */
  | { event: 'pulled'; model: string; version: number; remote: string; status: string };

/** A model to serve: with a selector, the version it names; without, what its policy selects. */
export interface ServeTarget {
  name: string;
  selector?: Selector | undefined;
}

/** How much may be loaded at once; unset: everything served is loaded. */
export interface MemoryBudget {
  bytes?: number | undefined;
  models?: number | undefined;
}

export interface ManagerOptions {
  registry: RegistryOptions;
  /** what to serve; empty = every model, each by its policy. */
  targets: ServeTarget[];
  /** versions loaded at start and never evicted or unloaded for idleness. */
  pins?: ServeTarget[];
  budget?: MemoryBudget;
  /** a model's version policy, runtime settings and keep-alive, from the flags and maas.yaml of the moment. */
  serving: (name: string, config: RegistryConfig) => ModelServing;
  observer: (model: string, version: number) => RuntimeObserver;
  log: (event: ServeEvent) => void;
  /** refuses a version before it loads, by throwing (a signature policy): at start, on reload and on a management load. */
  admit?: ((registry: Registry, record: VersionRecord) => void) | undefined;
  /** how long a load waits for busy versions to go idle so it can evict one: the request timeout. */
  roomWaitMs?: number;
  /** resident bytes of the process (tests may fake it); process.memoryUsage.rss by default. */
  rss?: () => number;
  now?: () => number;
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

const keyOf = (name: string, version: number) => `${name}@${version}`;

export class ModelManager {
  private routes = new Map<string, Route>();
  /** every version ever served here, by name@version: records are immutable, so a slot lives on. */
  private readonly slots = new Map<string, Slot>();
  /** versions loaded through the management API outside their model's policy. */
  private readonly extra = new Map<string, Set<number>>();
  /** models loaded through the management API that the targets did not name. */
  private readonly added = new Set<string>();
  private pinned = new Set<string>();
  /** the version each pin by alias or number last resolved to. */
  private readonly pinVersions = new Map<ServeTarget, number>();
  /** targets that stopped resolving (an alias deleted), by label, with the reason last logged. */
  private unresolved = new Map<string, string>();
  /** by model, the policy entries not registered at the last poll (each is said once). */
  private policyMissing = new Map<string, Set<string>>();
  /** why the last poll could not read the registry, logged once until a poll succeeds. */
  private refreshError: string | undefined;
  private refreshing: Promise<void> | undefined;
  private poller: NodeJS.Timeout | undefined;
  private sweeper: NodeJS.Timeout | undefined;
  /** loads and unloads, one at a time (see the header). */
  private exclusive: Promise<unknown> = Promise.resolve();
  private closed = false;
  /** versions whose generated warm-up failed, said once. */
  private readonly warmupFailed = new Set<string>();
  private readonly rss: () => number;
  private readonly now: () => number;
  ready = false;

  private constructor(private readonly registry: Registry, private readonly options: ManagerOptions) {
    this.rss = options.rss ?? (() => process.memoryUsage.rss());
    this.now = options.now ?? Date.now;
  }

  /**
   * Opens the registry and loads what is served at start. When `stop` settles first (a signal
   * while models load), loading ends, what loaded is unloaded, and it throws MAAS_CANCELLED.
   */
  static async open(options: ManagerOptions, stop?: Promise<unknown>): Promise<ModelManager> {
    const manager = new ModelManager(await Registry.open(options.registry), options);
    const loading = manager.refresh({ initial: true });
    const stopped = Symbol('stopped');
    try {
      const outcome = await (stop ? Promise.race([loading, stop.then(() => stopped)]) : loading);
      if (outcome === stopped) throw new MaasError('MAAS_CANCELLED', 'stopped while the models loaded');
    } catch (error) {
      loading.catch(() => undefined); // a load cut short by the close below is no news
      await manager.close();
      throw error;
    }
    manager.ready = true;
    return manager;
  }

  /** Whether versions load on demand under a budget, rather than all at once. */
  get budgeted(): boolean {
    return this.options.budget?.bytes !== undefined || this.options.budget?.models !== undefined;
  }

  route(name: string): Route | undefined {
    return this.routes.get(name);
  }

  allRoutes(): Route[] {
    return [...this.routes.values()];
  }

  /** Every loaded runtime, for the queue-depth gauge. */
  loadedRuntimes(): ModelRuntime[] {
    return [...this.slots.values()].flatMap((s) => (s.runtime ? [s.runtime] : []));
  }

  /** The served version `/models/NAME[/versions/V]` means, V a version number, an alias or `latest`; loaded or not. */
  resolve(name: string, version?: string): Slot {
    const route = this.routes.get(name);
    // A model whose only versions failed to load has no route: say why, rather than that it is unknown.
    const failed = route ? undefined : [...this.slots.values()].filter((s) => s.name === name && s.failedAt !== undefined && this.registry.versions(name).includes(s.version)).at(-1);
    if (failed) throw this.failedToLoad(failed);
    if (!route) {
      throw new MaasError('MAAS_MODEL_NOT_FOUND', `model '${clipped(name)}' is not served here`, { hint: `Served models: ${[...this.routes.keys()].join(', ') || 'none'}.` });
    }
    // `latest` as in NAME@latest: the newest version served under the name.
    const wanted = version === undefined ? route.defaultVersion : /^\d+$/.test(version) ? Number(version) : version === LATEST ? Math.max(...route.versions.keys()) : route.aliases.get(version);
    const slot = wanted === undefined ? undefined : route.versions.get(wanted);
    if (!slot) {
      throw new MaasError('MAAS_VERSION_NOT_FOUND', `model '${clipped(name)}' has no served version '${clipped(String(version))}'`, {
        hint: `Served: ${[...route.versions.keys(), ...route.aliases.keys()].join(', ')}.`,
      });
    }
    return slot;
  }

  /** Why a version that failed to load is not answering, and when it is tried again (Retry-After). */
  private failedToLoad(slot: Slot): MaasError {
    return new MaasError('MAAS_MODEL_NOT_READY', `${slot.name}@${slot.version} ${slot.reason ?? 'failed to load'}`, {
      hint: `It is tried again ${RETRY_FAILED_MS / 1000} s after the failure, or at once by POST /v2/repository/models/${slot.name}/load; the server's log has the details.`,
      details: { retryAfterS: Math.max(1, Math.ceil((slot.failedAt! + RETRY_FAILED_MS - this.now()) / 1000)) },
    });
  }

  /** The runtime of a served version, loading it first if it is not loaded (a request waits for that). */
  acquire(slot: Slot): ModelRuntime | Promise<ModelRuntime> {
    slot.lastUsed = this.now();
    if (slot.runtime && !slot.unloading) return slot.runtime;
    if (slot.held) {
      throw new MaasError('MAAS_MODEL_NOT_READY', `${slot.name}@${slot.version} was unloaded through the management API`, {
        hint: `Load it again: POST /v2/repository/models/${slot.name}/load (or \`maas deploy ${slot.name}@${slot.version}\`).`,
      });
    }
    if (slot.failedAt !== undefined && this.now() - slot.failedAt < RETRY_FAILED_MS) throw this.failedToLoad(slot);
    slot.waiting++;
    // Counted until the macrotask after the load: the caller queues its job in the microtask
    // its await resumes in, before which another load's eviction must not take this one.
    return this.ensureLoaded(slot).finally(() => setImmediate(() => slot.waiting--));
  }

  /** Loads a slot, or joins the load already under way. */
  private ensureLoaded(slot: Slot): Promise<ModelRuntime> {
    slot.loading ??= (async () => {
      try {
        await slot.unloading;
        return await this.serialized(() => this.loadSlot(slot));
      } finally {
        slot.loading = undefined;
      }
    })();
    return slot.loading;
  }

  private serialized<T>(work: () => Promise<T>): Promise<T> {
    const run = this.exclusive.then(work, work);
    this.exclusive = run.catch(() => undefined);
    return run;
  }

  startPolling(intervalMs: number): void {
    this.poller = setInterval(() => {
      // A registry mid-edit (a model removed, maas.yaml broken) keeps what is served; say why.
      void this.refresh({ initial: false }).then(
        () => (this.refreshError = undefined),
        (error: unknown) => {
          if (messageOf(error) !== this.refreshError) this.options.log({ event: 'refresh-failed', error: messageOf(error) });
          this.refreshError = messageOf(error);
        },
      );
    }, intervalMs);
    this.poller.unref();
    // Keep-alive is looked at often enough to unload within a few percent of its time, at most each second.
    this.sweeper = setInterval(() => void this.sweepIdle(), 1000);
    this.sweeper.unref();
  }

  /** Stops polling, waits for every queued and running request, unloads every version. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.poller);
    clearInterval(this.sweeper);
    await this.refreshing?.catch(() => undefined);
    this.routes = new Map();
    await this.serialized(() => Promise.all([...this.slots.values()].filter((s) => s.runtime).map((s) => this.unloadSlot(s, 'shutdown', { quiet: true }))));
  }

  refresh({ initial }: { initial: boolean }): Promise<void> {
    this.refreshing ??= this.apply(initial).finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }

  // ——— the management API ———

  /** Names of the models this server could load: its targets and what was loaded by hand, or every registered model. */
  private loadableNames(): string[] {
    const names = this.options.targets.length ? [...new Set([...this.options.targets.map((t) => t.name), ...this.added])] : this.registry.modelNames();
    return names.filter((name) => this.registry.versions(name).length > 0).sort();
  }

  /** Triton's repository index: every version of every model this server could load, with its state. */
  index(): VersionStatus[] {
    const statuses: VersionStatus[] = [];
    const config = this.registry.config;
    for (const name of this.loadableNames()) {
      const route = this.routes.get(name);
      for (const version of this.registry.versions(name)) {
        const slot = route?.versions.get(version) ?? this.slots.get(keyOf(name, version));
        const served = route?.versions.has(version) ?? false;
        statuses.push(this.status(slot ?? this.slotFor(name, version), served, config));
      }
    }
    return statuses;
  }

  /** How a model is served now: its policy and the runtime options of versions it loads next. */
  servingOf(name: string): ModelServing {
    return this.options.serving(name, this.registry.config);
  }

  /** A served version's line of the index. */
  statusOf(slot: Slot): VersionStatus {
    return this.status(slot, true, this.registry.config);
  }

  private status(slot: Slot, served: boolean, config: RegistryConfig): VersionStatus {
    const runtime = slot.unloading ? undefined : slot.runtime;
    const { keepAliveMs, policy } = this.options.serving(slot.name, config);
    const pinned = this.pinned.has(keyOf(slot.name, slot.version));
    const idle = slot.lastUsed ? this.now() - slot.lastUsed : null;
    const state: VersionState = slot.unloading ? 'UNLOADING' : runtime ? 'READY' : slot.loading ? 'LOADING' : 'UNAVAILABLE';
    let reason = '';
    if (state === 'UNAVAILABLE') {
      // A version that failed to load is left out of the routes: its failure is why, not the policy.
      if (slot.failedAt !== undefined && slot.reason) reason = slot.reason;
      else if (!served) reason = `not in the version policy ${formatVersionPolicy(policy)}; POST /v2/repository/models/${slot.name}/load with parameters.version ${slot.version} loads it`;
      else if (slot.held) reason = 'unloaded through the management API';
      else reason = slot.reason ?? 'not loaded yet: loads on its first request';
    }
    return {
      name: slot.name,
      version: String(slot.version),
      state,
      reason,
      digest: slot.digest,
      file_bytes: slot.fileBytes,
      resident_bytes: runtime ? slot.residentBytes ?? null : null,
      device: runtime?.provider ?? null,
      pinned,
      in_flight: runtime?.inFlight ?? 0,
      queued: runtime?.queueDepth ?? 0,
      idle_ms: idle,
      keep_alive_ms_left: runtime && keepAliveMs !== undefined && !pinned ? Math.max(0, keepAliveMs - (idle ?? 0)) : null,
      load_ms: runtime ? Math.round(runtime.loadMs) : null,
    };
  }

  /**
   * Loads a model now: `version` (a number or an alias) adds that version to what is served even
   * outside the policy; without it, the versions the policy selects. Undoes an unload by hand.
   */
  async load(name: string, version?: string): Promise<VersionStatus[]> {
    const versions = this.registry.versions(name);
    if (versions.length === 0) this.registry.resolve({ name, selector: { kind: 'latest' } }); // throws not found
    if (this.options.targets.length && !this.options.targets.some((t) => t.name === name)) this.added.add(name);
    let wanted: number[];
    if (version === undefined) {
      wanted = this.policyVersions(name, this.registry.config);
    } else {
      const resolved = this.registry.resolve({ name, selector: /^\d+$/.test(version) ? { kind: 'version', version: Number(version) } : { kind: 'alias', alias: version } }).version;
      if (!this.extra.has(name)) this.extra.set(name, new Set());
      this.extra.get(name)!.add(resolved);
      wanted = [resolved];
    }
    for (const v of wanted) {
      const slot = this.slotFor(name, v);
      slot.held = false;
      slot.failedAt = undefined;
    }
    await this.refresh({ initial: false });
    // A version the refresh could not load is left out of the routes: its failure is the answer.
    const failed = wanted.map((v) => this.slotFor(name, v)).find((s) => !this.routes.get(name)?.versions.has(s.version) && s.failedAt !== undefined);
    if (failed) throw failed.failure;
    const slots = wanted.map((v) => this.routes.get(name)?.versions.get(v)).filter((s): s is Slot => s !== undefined);
    await Promise.all(slots.map((slot) => this.ensureLoaded(slot)));
    return slots.map((slot) => this.status(slot, true, this.registry.config));
  }

  /** Unloads a model (or one version) after its queued and running requests finish; it stays refused until loaded again. */
  async unload(name: string, version?: string): Promise<VersionStatus[]> {
    const route = this.routes.get(name);
    if (!route) throw new MaasError('MAAS_MODEL_NOT_FOUND', `model '${clipped(name)}' is not served here`, { hint: `Served models: ${[...this.routes.keys()].join(', ') || 'none'}.` });
    const slots = version === undefined ? [...route.versions.values()] : [this.resolve(name, version)];
    for (const slot of slots) slot.held = true;
    await this.serialized(() => Promise.all(slots.filter((s) => s.runtime).map((s) => this.unloadSlot(s, 'request'))));
    return slots.map((slot) => this.status(slot, true, this.registry.config));
  }

  // ——— loading and unloading ———

  private slotFor(name: string, version: number): Slot {
    const key = keyOf(name, version);
    let slot = this.slots.get(key);
    if (!slot) {
      const record = this.registry.readVersion(name, version);
      slot = {
        name, version, versionLabel: String(version), signature: record.onnx.signature, digest: record.manifestDigest,
        fileBytes: record.manifest.layers.reduce((n, l) => n + l.size, 0),
        runtime: undefined, loading: undefined, unloading: undefined, lastUsed: 0, residentBytes: undefined, reason: undefined, held: false, lazy: false, failedAt: undefined, failure: undefined, waiting: 0,
      };
      this.slots.set(key, slot);
    }
    return slot;
  }

  /** Its files once per session it opens: the least a loaded version holds. */
  private weightBytes(slot: Slot): number {
    return slot.fileBytes * this.options.serving(slot.name, this.registry.config).runtime.workers;
  }

  /** What loading `slot` is expected to cost: its last measurement, else its weights. */
  private estimate(slot: Slot): number {
    return slot.residentBytes ?? this.weightBytes(slot);
  }

  private loadedSlots(): Slot[] {
    return [...this.slots.values()].filter((s) => s.runtime && !s.unloading);
  }

  /**
   * Unloads least-recently-used idle, unpinned versions until `incoming` more bytes and one more
   * model fit the budget, waiting up to the request timeout for busy ones to go idle. Throws
   * MAAS_BUDGET_EXCEEDED when it cannot fit beside the pinned versions (no retry helps), and
   * MAAS_OVERLOADED when what is left stays busy.
   */
  private async makeRoom(incoming: Slot, bytes: number, models: number, { wait = true } = {}): Promise<void> {
    const budget = this.options.budget ?? {};
    const ref = `${incoming.name}@${incoming.version}`;
    const others = () => this.loadedSlots().filter((s) => s !== incoming);
    const pinned = others().filter((s) => this.pinned.has(keyOf(s.name, s.version)));
    const pinnedBytes = pinned.reduce((n, s) => n + (s.residentBytes ?? 0), 0);
    if (budget.bytes !== undefined && pinnedBytes + bytes > budget.bytes) {
      throw new MaasError('MAAS_BUDGET_EXCEEDED', `${ref} needs about ${formatBytes(bytes)}, and the memory budget is ${formatBytes(budget.bytes)}${pinned.length ? ` with ${formatBytes(pinnedBytes)} pinned` : ''}`, {
        hint: 'Raise --memory-budget, or pin fewer versions.',
      });
    }
    if (budget.models !== undefined && pinned.length + models > budget.models) {
      throw new MaasError('MAAS_BUDGET_EXCEEDED', `${ref} does not fit --max-loaded-models ${budget.models}: ${pinned.length} pinned version${pinned.length === 1 ? ' is' : 's are'} loaded`, {
        hint: 'Raise --max-loaded-models, or pin fewer versions.',
      });
    }
    const over = () => {
      const used = others().reduce((n, s) => n + (s.residentBytes ?? 0), 0);
      if (budget.models !== undefined && others().length + models > budget.models) return 'max_models' as const;
      if (budget.bytes !== undefined && used + bytes > budget.bytes) return 'memory' as const;
      return undefined;
    };
    const waitUntil = this.now() + (this.options.roomWaitMs ?? SERVING_DEFAULTS.timeoutMs);
    for (let reason = over(); reason; reason = over()) {
      const evictable = others().filter((s) => !this.pinned.has(keyOf(s.name, s.version)));
      const victim = evictable
        .filter((s) => s.waiting === 0 && s.runtime!.inFlight === 0 && s.runtime!.queueDepth === 0)
        .sort((a, b) => a.lastUsed - b.lastUsed)[0];
      if (!victim) {
        // Busy versions go idle between requests: room is waited for, as a request waits for a load.
        if (wait && evictable.length > 0 && this.now() < waitUntil && !this.closed) {
          await sleep(20);
          continue;
        }
        const what = reason === 'memory' ? `the memory budget (${formatBytes(budget.bytes!)})` : `--max-loaded-models ${budget.models}`;
        throw new MaasError('MAAS_OVERLOADED', `${ref} does not fit ${what}: every other loaded version stayed busy`, {
          hint: 'Retry in a moment, or raise --memory-budget / --max-loaded-models.',
        });
      }
      victim.lazy = true;
      await this.unloadSlot(victim, reason);
      victim.reason = `evicted (${reason === 'memory' ? 'memory budget' : 'max loaded models'}): loads again on its next request`;
    }
  }

  /** Loads `slot` (the caller holds `serialized`), making room first. */
  private async loadSlot(slot: Slot, initial = false): Promise<ModelRuntime> {
    if (slot.runtime && !slot.unloading) return slot.runtime;
    if (this.closed) throw new MaasError('MAAS_MODEL_NOT_READY', 'the server is shutting down');
    const { name, version } = slot;
    try {
      if (this.budgeted) await this.makeRoom(slot, this.estimate(slot), 1);
      const record = this.registry.readVersion(name, version);
      this.options.admit?.(this.registry, record);
      await checkBlobs(this.registry, record);
      const before = this.rss();
      const samples = this.warmupSamples(record);
      const runtime = await ModelRuntime.load(
        { name, version, signature: record.onnx.signature, modelPath: modelPath(this.registry, record), samples },
        this.options.serving(name, this.registry.config).runtime,
        this.options.observer(name, version),
      );
      slot.runtime = runtime;
      slot.lazy = false;
      // Keep-alive counts from the last request, or from the load when none came since.
      slot.lastUsed = Math.max(slot.lastUsed, this.now());
      // Memory an earlier unload freed stays in the allocator and is reused, so growth can be
      // small; the weights are resident all the same, once per session.
      slot.residentBytes = Math.max(this.rss() - before, this.weightBytes(slot));
      slot.reason = undefined;
      slot.failedAt = undefined;
      this.options.log({
        event: 'loaded', model: name, version, provider: runtime.provider, loadMs: Math.round(runtime.loadMs), warmupMs: Math.round(runtime.warmupMs), warmupSamples: samples?.length ?? 0, residentBytes: slot.residentBytes,
        ...(runtime.probeUs === undefined ? {} : { runUs: Math.round(runtime.probeUs) }), inline: runtime.runsInline,
        // Said on the first load of a version, not again on each on-demand reload.
        ...(runtime.warmupError === undefined || this.warmupFailed.has(keyOf(name, version)) ? {} : { warmupError: runtime.warmupError }),
      });
      if (runtime.warmupError !== undefined) this.warmupFailed.add(keyOf(name, version));
      // Measured above the estimate: others make room now, never the version just loaded.
      if (this.budgeted) {
        await this.makeRoom(slot, slot.residentBytes, 1, { wait: false }).catch((error: unknown) => {
          this.options.log({ event: 'over-budget', model: name, version, residentBytes: slot.residentBytes!, error: messageOf(error) });
        });
      }
      return runtime;
    } catch (error) {
      if (initial && isDeviceFailure(error)) throw error;
      // Room that was lacking is looked for again on the next request, not after a retry delay.
      if (!(isMaasError(error) && (error.code === 'MAAS_OVERLOADED' || error.code === 'MAAS_BUDGET_EXCEEDED'))) {
        const reason = `failed to load: ${messageOf(error)}`;
        // A retry that fails the same way (a refused signature, every 30 s) is not news.
        if (slot.reason !== reason) this.options.log({ event: 'load-failed', model: name, version, serving: this.stillServing(name, version), error: messageOf(error) });
        slot.failedAt = this.now();
        slot.failure = error;
        slot.reason = reason;
      }
      throw error;
    }
  }

  /** The loaded version that keeps answering under `name` while `failed` could not load, if any. */
  private stillServing(name: string, failed: number): number | undefined {
    const route = this.routes.get(name);
    return route && route.defaultVersion !== failed && route.versions.get(route.defaultVersion)?.runtime ? route.defaultVersion : undefined;
  }

  /** The version's stored warm-up samples as feeds, or undefined for a generated sample. */
  private warmupSamples(record: VersionRecord) {
    const bytes = readWarmup(this.registry, record);
    return bytes === undefined ? undefined : decodeWarmup(bytes, record.onnx.signature, `${record.name}@${record.version}`);
  }

  /** Drains and unloads (the caller holds `serialized`). */
  private async unloadSlot(slot: Slot, reason: UnloadReason, { quiet = false } = {}): Promise<void> {
    const runtime = slot.runtime;
    if (!runtime) return;
    let done!: () => void;
    slot.unloading = new Promise((resolve) => (done = resolve));
    try {
      await runtime.drain();
      await runtime.close();
    } finally {
      slot.runtime = undefined;
      slot.unloading = undefined;
      done();
    }
    if (!quiet) this.options.log({ event: 'unloaded', model: slot.name, version: slot.version, reason });
  }

  /** Keep-alive: unloads versions idle longer than their model's keepAlive. */
  private async sweepIdle(): Promise<void> {
    const config = this.registry.config;
    const now = this.now();
    for (const slot of this.loadedSlots()) {
      const { keepAliveMs } = this.options.serving(slot.name, config);
      if (keepAliveMs === undefined || this.pinned.has(keyOf(slot.name, slot.version))) continue;
      const runtime = slot.runtime!;
      if (runtime.inFlight > 0 || runtime.queueDepth > 0 || now - slot.lastUsed < keepAliveMs) continue;
      await this.serialized(async () => {
        // Looked at again under the lock: a request may have come in while waiting for it.
        if (slot.runtime !== runtime || runtime.inFlight > 0 || runtime.queueDepth > 0 || this.now() - slot.lastUsed < keepAliveMs) return;
        slot.lazy = true;
        await this.unloadSlot(slot, 'keep_alive');
        slot.reason = `unloaded after ${formatDuration(keepAliveMs)} idle (keep-alive): loads again on its next request`;
      });
    }
  }

  // ——— what is served ———

  private desired(initial: boolean): Desired[] {
    const config = this.registry.reloadConfig();
    const targets: ServeTarget[] = this.options.targets.length
      ? [...this.options.targets, ...[...this.added].map((name) => ({ name }))]
      : this.registry.modelNames().map((name) => ({ name }));
    const byName = new Map<string, Desired>();
    const unresolved = new Map<string, string>();
    const missing = new Map<string, Set<string>>();
    for (const target of targets) {
      let versions: number[];
      try {
        versions = target.selector
          ? [this.registry.resolve({ name: target.name, selector: target.selector }).version]
          : this.policyVersions(target.name, config);
      } catch (error) {
        // At start a ref that does not resolve is the user's to fix. Later (an alias deleted, a
        // model removed) it keeps what it served, and the other models keep reloading.
        if (initial || !isMaasError(error)) throw error;
        const label = target.selector ? formatModelRef({ name: target.name, selector: target.selector }) : target.name;
        unresolved.set(label, messageOf(error));
        if (this.unresolved.get(label) !== messageOf(error)) this.options.log({ event: 'target-unresolved', target: label, model: target.name, error: messageOf(error), serving: this.stillServable(target.name) });
        versions = this.stillServable(target.name);
      }
      if (versions.length === 0 && initial && this.options.targets.some((t) => t.name === target.name)) {
        const { policy } = this.options.serving(target.name, config);
        throw new MaasError('MAAS_VERSION_NOT_FOUND', `the version policy ${formatVersionPolicy(policy)} selects no version of ${target.name} (registered: ${this.registry.versions(target.name).join(', ')})`, {
          hint: `Change --version-policy or versionPolicy for ${target.name} in maas.yaml, or name a version: maas serve ${target.name}@${this.registry.versions(target.name).at(-1)}.`,
        });
      }
      // (After that check: a start that fails says so, not that a missing version is served once registered.)
      if (!target.selector) this.notePolicyMissing(target.name, config, missing);
      if (versions.length === 0) continue;
      const entry = byName.get(target.name) ?? { name: target.name, defaultVersion: versions.at(-1)!, versions: new Set<number>(), aliases: new Map<string, number>() };
      for (const v of versions) entry.versions.add(v);
      byName.set(target.name, entry);
    }
    for (const [name, versions] of this.extra) {
      const registered = new Set(this.registry.versions(name));
      const entry = byName.get(name);
      for (const v of versions) {
        if (!registered.has(v)) versions.delete(v); // removed from the registry since
        else if (entry) entry.versions.add(v);
        else byName.set(name, { name, defaultVersion: v, versions: new Set([v]), aliases: new Map() });
      }
    }
    // A pinned version is served, whatever the policy says.
    for (const pin of this.options.pins ?? []) {
      const entry = byName.get(pin.name);
      if (!entry && !initial) continue; // its model was removed while served
      if (!entry) throw new MaasError('MAAS_USAGE', `--pin ${pin.name} names a model this server does not serve`, { hint: `Served: ${[...byName.keys()].join(', ') || 'none'}. Pin one of those, or serve ${pin.name} too.` });
      const version = this.pinVersion(pin, initial);
      if (version !== undefined) entry.versions.add(version);
    }
    for (const entry of byName.values()) {
      for (const [alias, v] of Object.entries(this.registry.aliases(entry.name))) if (entry.versions.has(v)) entry.aliases.set(alias, v);
    }
    this.unresolved = unresolved;
    this.policyMissing = missing;
    return [...byName.values()];
  }

  /** Logs what a model's policy names that is not registered: each entry once, until it is registered. */
  private notePolicyMissing(name: string, config: RegistryConfig, missing: Map<string, Set<string>>): void {
    const { policy } = this.options.serving(name, config);
    const names = missingFromPolicy(policy as VersionPolicy, this.registry.versions(name), this.registry.aliases(name));
    if (names.length === 0) return;
    missing.set(name, new Set(names));
    const unsaid = names.filter((n) => !this.policyMissing.get(name)?.has(n));
    if (unsaid.length) this.options.log({ event: 'policy-missing', model: name, policy: formatVersionPolicy(policy), missing: unsaid });
  }

  /**
   * The versions served under `name` now that can go on answering: still registered, or loaded
   * (a model removed from the registry keeps answering rather than going dark mid-edit).
   */
  private stillServable(name: string): number[] {
    const registered = new Set(this.registry.versions(name));
    const route = this.routes.get(name);
    return [...(route?.versions ?? [])].filter(([v, slot]) => registered.has(v) || slot.runtime !== undefined).map(([v]) => v).sort((a, b) => a - b);
  }

  /** The versions of `name` its policy selects; none when the model is gone (a named one is an error). */
  private policyVersions(name: string, config: RegistryConfig): number[] {
    const registered = this.registry.versions(name);
    if (registered.length === 0 && this.options.targets.some((t) => t.name === name)) this.registry.resolve({ name, selector: { kind: 'latest' } }); // throws not found
    const { policy } = this.options.serving(name, config);
    return selectVersions(policy as VersionPolicy, registered, this.registry.aliases(name));
  }

  /**
   * The version a pin by alias or number names, remembered: one that stops resolving (its alias
   * deleted) keeps the version it pinned.
   */
  private pinVersion(pin: ServeTarget, initial: boolean): number | undefined {
    if (!pin.selector) return undefined;
    try {
      const { version } = this.registry.resolve({ name: pin.name, selector: pin.selector });
      this.pinVersions.set(pin, version);
      return version;
    } catch (error) {
      if (initial || !isMaasError(error)) throw error;
      return this.pinVersions.get(pin);
    }
  }

  /** The pins as keys, as `desired` just resolved them: a pin by alias follows its moves, a pin by name the default version. */
  private resolvePins(desired: Desired[]): Set<string> {
    const keys = new Set<string>();
    for (const pin of this.options.pins ?? []) {
      const version = pin.selector ? this.pinVersions.get(pin) : desired.find((d) => d.name === pin.name)?.defaultVersion;
      if (version !== undefined) keys.add(keyOf(pin.name, version));
    }
    return keys;
  }

  /** Whether a served version loads now rather than on its first request. */
  private eager(slot: Slot, previous: Route | undefined, wantDefault: number): boolean {
    if (slot.lazy) return false;
    if (!this.budgeted || this.pinned.has(keyOf(slot.name, slot.version))) return true;
    // Under a budget, a new default version replaces a loaded one warm, as without a budget.
    const old = previous?.versions.get(previous.defaultVersion);
    return slot.version === wantDefault && previous?.defaultVersion !== wantDefault && old?.runtime !== undefined;
  }

  private async apply(initial: boolean): Promise<void> {
    const desired = this.desired(initial);
    this.pinned = this.resolvePins(desired);
    const next = new Map<string, Route>();
    const waitSwaps: { slot: Slot; from: Slot }[] = [];
    let firstFailure: unknown;
    for (const want of desired) {
      const previous = this.routes.get(want.name);
      const versions = new Map<number, Slot>();
      for (const version of want.versions) {
        const slot = this.slotFor(want.name, version);
        const recentlyFailed = slot.failedAt !== undefined && this.now() - slot.failedAt < RETRY_FAILED_MS;
        // Without a budget a version that failed is left out until its retry, as if not registered.
        if (recentlyFailed && !this.budgeted) continue;
        versions.set(version, slot);
        if (slot.held || recentlyFailed || (slot.runtime && !slot.unloading) || !this.eager(slot, previous, want.defaultVersion)) continue;
        try {
          // Looked at again under the lock: an eviction or keep-alive may have made it lazy since.
          await this.serialized(async () => (slot.lazy ? undefined : this.loadSlot(slot, initial)));
        } catch (error) {
          if (isDeviceFailure(error)) throw error;
          const pinnedOver = isMaasError(error) && error.code === 'MAAS_BUDGET_EXCEEDED' && this.pinned.has(keyOf(slot.name, slot.version));
          // A version pinned on the command line that the budget can never hold fails the start;
          // later (a pin that moved) it is said, not dropped without a word.
          if (pinnedOver && initial) throw error;
          if (pinnedOver) this.options.log({ event: 'load-failed', model: slot.name, version, serving: this.stillServing(slot.name, version), error: messageOf(error) });
          const from = previous?.versions.get(previous.defaultVersion);
          if (isMaasError(error) && error.code === 'MAAS_OVERLOADED' && version === want.defaultVersion && from?.runtime && !want.versions.has(from.version)) {
            waitSwaps.push({ slot, from });
          } else {
            firstFailure ??= error;
            // A new default that failed to load keeps the old one serving under its name.
            if (!this.budgeted || version === want.defaultVersion) versions.delete(version);
          }
        }
      }
      const defaultVersion = versions.has(want.defaultVersion) ? want.defaultVersion : previous?.defaultVersion;
      if (defaultVersion === undefined) continue;
      if (!versions.has(defaultVersion) && previous?.versions.has(defaultVersion)) versions.set(defaultVersion, previous.versions.get(defaultVersion)!);
      // An alias moved onto a version that failed to load keeps answering with the one it had.
      const aliases = new Map<string, number>();
      for (const [alias, version] of want.aliases) {
        const before = previous?.aliases.get(alias);
        if (versions.has(version)) aliases.set(alias, version);
        else if (before !== undefined && previous!.versions.get(before)?.runtime) {
          versions.set(before, previous!.versions.get(before)!);
          aliases.set(alias, before);
        }
      }
      next.set(want.name, { name: want.name, defaultVersion, versions, aliases });
      if (!initial && previous?.defaultVersion !== defaultVersion) this.options.log({ event: 'swapped', model: want.name, from: previous?.defaultVersion, to: defaultVersion, kept: previous !== undefined && versions.has(previous.defaultVersion) });
    }
    // At start, a version that cannot load is left out and the others serve, unless none can.
    if (initial && next.size === 0 && firstFailure !== undefined) throw firstFailure;
    this.routes = next;
    const routed = new Set([...next.values()].flatMap((r) => [...r.versions.values()]));
    const gone = [...this.slots.values()].filter((s) => s.runtime && !routed.has(s));
    await this.serialized(() => Promise.all(gone.map((s) => this.unloadSlot(s, 'policy'))));
    // Swaps the budget cannot hold twice: the old version has drained and unloaded above; requests wait for the new one.
    for (const { slot, from } of waitSwaps) {
      this.options.log({ event: 'swap-wait', model: slot.name, from: from.version, to: slot.version });
      await this.ensureLoaded(slot).catch(() => undefined);
    }
  }
}
