/**
 * The REST API as one table: each route a path template, the methods it answers, whether it
 * needs the token, and its handler. The server matches a request against the table; nothing
 * else decides what a path means (and the OpenAPI document can be made from the same rows).
 */
import type { IncomingMessage } from 'node:http';
import { MaasError } from '../../core/errors.js';
import { modelMetadata } from '../../inference/protocol.js';
import { EXTENSIONS, type RequestLabels, type ServingCore, infer, resolveSlot, servedVersions } from '../serving.js';
import { type BodyParser, readBody } from './body.js';
import { HEADER_LENGTH, encodeInferResponse } from './kserve.js';
import { checkSignatureName, encodePredictResponse, tfModelMetadata } from './tfserving.js';

export interface Reply {
  status: number;
  body: Buffer | string | object;
  headers?: Record<string, string>;
}

export interface RouteRequest {
  req: IncomingMessage;
  /** the template's parameters, percent-decoded. */
  params: Record<string, string | undefined>;
  query: URLSearchParams;
  labels: RequestLabels;
  core: ServingCore;
  bodies: BodyParser;
}

type Handler = (r: RouteRequest) => Reply | Promise<Reply>;

export interface Route {
  /** `{name}` matches one path segment (no `/` or `:`). */
  path: string;
  methods: Partial<Record<'GET' | 'POST', Handler>>;
  /** false only for liveness: a load balancer's probe carries no token. */
  auth: boolean;
  /** the `protocol` label of its requests in /metrics. */
  protocol: 'v2' | 'v1' | 'other';
  summary: string;
}

const ok = (body: Reply['body'], headers?: Record<string, string>): Reply => ({ status: 200, body, ...(headers ? { headers } : {}) });

async function kserveInfer({ req, params, labels, core, bodies }: RouteRequest): Promise<Reply> {
  const slot = resolveSlot(core, params.model!, params.version, labels);
  const body = await readBody(req, core.maxBodyBytes);
  const parsed = await bodies.infer(body, req.headers[HEADER_LENGTH] as string | undefined, slot.signature);
  const outputs = await infer(core, await core.manager().acquire(slot), parsed.feeds, parsed.outputs);
  const encoded = encodeInferResponse({ model: slot.name, version: slot.version, id: parsed.id, outputs, order: parsed.outputs, binaryOutputs: parsed.binaryOutputs });
  return ok(encoded.body, encoded.headers);
}

function kserveMetadata({ params, labels, core }: RouteRequest): Reply {
  const slot = resolveSlot(core, params.model!, params.version, labels);
  return ok(modelMetadata(slot.name, servedVersions(core, slot.name), slot.signature));
}

/** 200 when the version is loaded; 503 with its state and why not, as Triton answers for a model not loaded. */
function kserveReady({ params, labels, core }: RouteRequest): Reply {
  const slot = resolveSlot(core, params.model!, params.version, labels);
  const status = core.manager().statusOf(slot);
  return status.state === 'READY' ? ok({ name: slot.name, ready: true }) : { status: 503, body: { name: slot.name, ready: false, state: status.state, reason: status.reason } };
}

async function tfPredict({ req, params, labels, core, bodies }: RouteRequest): Promise<Reply> {
  const slot = resolveSlot(core, params.model!, params.version ?? params.label, labels);
  const body = await readBody(req, core.maxBodyBytes);
  const parsed = await bodies.predict(body, slot.signature);
  const outputs = await infer(core, await core.manager().acquire(slot), parsed.feeds, parsed.outputs);
  return ok(encodePredictResponse(parsed.format, outputs, parsed.outputs));
}

function tfMetadata({ params, query, labels, core }: RouteRequest): Reply {
  const slot = resolveSlot(core, params.model!, params.version ?? params.label, labels);
  checkSignatureName(query.get('signature_name') ?? undefined);
  return ok(tfModelMetadata(slot.name, slot.version, slot.signature));
}

/** TF Serving's states for ours: a version that loads on its first request is AVAILABLE to a client. */
const TF_STATE = { READY: 'AVAILABLE', LOADING: 'LOADING', UNLOADING: 'UNLOADING', UNAVAILABLE: 'AVAILABLE' } as const;

/** Without a version or label: every served version, as TF Serving lists them. */
function tfStatus({ params, labels, core }: RouteRequest): Reply {
  const slot = resolveSlot(core, params.model!, params.version ?? params.label, labels);
  const manager = core.manager();
  const slots = params.version ?? params.label ? [slot] : [...manager.route(slot.name)!.versions.values()].sort((a, b) => a.version - b.version);
  return ok({
    model_version_status: slots.map((s) => {
      const status = manager.statusOf(s);
      const refused = status.state === 'UNAVAILABLE' && (s.held || s.failedAt !== undefined);
      return {
        version: s.versionLabel,
        state: refused ? 'END' : TF_STATE[status.state],
        status: refused ? { error_code: 'UNAVAILABLE', error_message: status.reason } : { error_code: 'OK', error_message: '' },
      };
    }),
  });
}

const v2Model = (suffix: string, summary: string, methods: Route['methods']): Route[] => [
  { path: `/v2/models/{model}${suffix}`, methods, auth: true, protocol: 'v2', summary },
  { path: `/v2/models/{model}/versions/{version}${suffix}`, methods, auth: true, protocol: 'v2', summary: `${summary} (one version or alias)` },
];

const v1Model = (suffix: string, summary: string, methods: Route['methods']): Route[] => [
  { path: `/v1/models/{model}${suffix}`, methods, auth: true, protocol: 'v1', summary },
  { path: `/v1/models/{model}/versions/{version}${suffix}`, methods, auth: true, protocol: 'v1', summary: `${summary} (one version)` },
  { path: `/v1/models/{model}/labels/{label}${suffix}`, methods, auth: true, protocol: 'v1', summary: `${summary} (a version label: an alias)` },
];

export const ROUTES: Route[] = [
  { path: '/v2/health/live', methods: { GET: () => ok({ live: true }) }, auth: false, protocol: 'other', summary: 'liveness: the process answers' },
  {
    path: '/v2/health/ready',
    methods: { GET: ({ core }) => (core.ready() && !core.draining() ? ok({ ready: true }) : { status: 503, body: { ready: false } }) },
    auth: true, protocol: 'other', summary: 'readiness: every model loaded',
  },
  { path: '/v2', methods: { GET: ({ core }) => ok({ name: 'maas', version: core.version, extensions: EXTENSIONS }) }, auth: true, protocol: 'other', summary: 'server metadata' },
  {
    path: '/metrics',
    methods: { GET: async ({ core }) => ok(await core.metrics.registry.metrics(), { 'content-type': core.metrics.registry.contentType }) },
    auth: true, protocol: 'other', summary: 'Prometheus metrics',
  },
  ...v2Model('', 'model metadata', { GET: kserveMetadata }),
  ...v2Model('/ready', 'model readiness', { GET: kserveReady }),
  ...v2Model('/infer', 'inference (KServe v2 JSON or binary tensor extension)', { POST: kserveInfer }),
  ...v1Model('', 'TF Serving model status', { GET: tfStatus }),
  ...v1Model('/metadata', 'TF Serving model metadata', { GET: tfMetadata }),
  ...v1Model(':predict', 'TF Serving predict (row or columnar)', { POST: tfPredict }),
];

interface CompiledRoute {
  route: Route;
  /** the template's text before its first parameter: only paths that start with it are tried. */
  prefix: string;
  pattern: RegExp;
  names: string[];
}

function compile(route: Route): CompiledRoute {
  const names: string[] = [];
  const prefix = route.path.split('{')[0]!;
  const source = route.path.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{(\w+)\}/g, (_, name: string) => {
    names.push(name);
    return '([^/:]+)';
  });
  return { route, prefix, pattern: new RegExp(`^${source}$`), names };
}

const COMPILED = ROUTES.map(compile);
/** Routes without parameters, by their path: most probes and scrapes are one lookup. */
const EXACT = new Map(COMPILED.filter((c) => c.names.length === 0).map((c) => [c.route.path, c.route]));
const TEMPLATED = COMPILED.filter((c) => c.names.length > 0);

/** A path segment, percent-decoded; a broken escape is the client's mistake, a 400. */
function decodeSegment(segment: string): string {
  try {
    return segment.includes('%') ? decodeURIComponent(segment) : segment;
  } catch {
    throw new MaasError('MAAS_BAD_INPUT', `${JSON.stringify(segment.slice(0, 100))} in the request path is not valid percent-encoding`);
  }
}

/** The route a path names and its parameters, or undefined. The path is not yet decoded. */
export function matchRoute(target: string): { route: Route; params: Record<string, string | undefined> } | undefined {
  const path = target.length > 1 && target.endsWith('/') ? target.slice(0, -1) : target;
  const exact = EXACT.get(path);
  if (exact) return { route: exact, params: {} };
  for (const { route, prefix, pattern, names } of TEMPLATED) {
    if (!path.startsWith(prefix)) continue;
    const match = pattern.exec(path);
    if (match) return { route, params: Object.fromEntries(names.map((name, i) => [name, decodeSegment(match[i + 1]!)])) };
  }
  return undefined;
}
