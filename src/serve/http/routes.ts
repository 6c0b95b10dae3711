/**
 * The REST API as one table: each route a path template, the methods it answers, whether it
 * needs the token, and its handler. The server matches a request against the table; nothing
 * else decides what a path means, and openapi.ts documents the same rows.
 */
import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { fileURLToPath } from 'node:url';
import { MaasError, clipped } from '../../core/errors.js';
import { badInput, isObject, modelMetadata } from '../../inference/protocol.js';
import { repositoryIndex, repositoryLoad, repositoryParameters, repositoryUnload } from '../repository.js';
import { modelStatistics } from '../statistics.js';
import { type DocumentedRoute, openApiDocument } from './openapi.js';
import { EXTENSIONS, type RequestLabels, type ServingCore, infer, resolveSlot, servedModelConfig, servedVersions } from '../serving.js';
import type { BodyParser } from './body.js';
import { readDecodedBody } from './encoding.js';
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
  params: Readonly<Record<string, string | undefined>>;
  query: URLSearchParams;
  labels: RequestLabels;
  core: ServingCore;
  bodies: BodyParser;
}

type Handler = (r: RouteRequest) => Reply | Promise<Reply>;

export interface Route extends DocumentedRoute {
  /** `{name}` matches one path segment (no `/` or `:`). */
  path: string;
  methods: Partial<Record<'GET' | 'POST', Handler>>;
  /** false only for liveness: a load balancer's probe carries no token. */
  auth: boolean;
  /** the `protocol` label of its requests in /metrics. */
  protocol: 'v2' | 'v1' | 'other';
  /** a page a browser opens: a missing token is asked for with HTTP Basic (the token as password). */
  browser?: boolean;
}

const ok = (body: Reply['body'], headers?: Record<string, string>): Reply => ({ status: 200, body, ...(headers ? { headers } : {}) });

async function kserveInfer({ req, params, labels, core, bodies }: RouteRequest): Promise<Reply> {
  const slot = resolveSlot(core, params.model!, params.version, labels);
  const body = await readDecodedBody(req, core.maxBodyBytes);
  // A small body parses at once and a loaded model is at hand: no await where nothing is pending.
  let parsed = bodies.infer(body, req.headers[HEADER_LENGTH] as string | undefined, slot.signature);
  if (parsed instanceof Promise) parsed = await parsed;
  let runtime = core.manager().acquire(slot);
  if (runtime instanceof Promise) runtime = await runtime;
  const outputs = await infer(core, runtime, parsed.feeds, parsed.outputs);
  let encoded = encodeInferResponse({ model: slot.name, version: slot.version, id: parsed.id, outputs, order: parsed.outputs, binaryOutputs: parsed.binaryOutputs });
  if (encoded instanceof Promise) encoded = await encoded;
  return ok(encoded.body, encoded.headers);
}

function kserveMetadata({ params, labels, core }: RouteRequest): Reply {
  const slot = resolveSlot(core, params.model!, params.version, labels);
  return ok(modelMetadata(slot.name, servedVersions(core, slot.name), slot.signature));
}

/** Triton's model configuration: the version's batching, tensors, queue and instances. */
function kserveConfig({ params, labels, core }: RouteRequest): Reply {
  return ok(servedModelConfig(core, resolveSlot(core, params.model!, params.version, labels)));
}

/** Triton's statistics: of every model, of a model's served versions, or of one version. */
function kserveStatistics({ params, labels, core }: RouteRequest): Reply {
  if (params.model !== undefined) resolveSlot(core, params.model, params.version, labels);
  return ok(modelStatistics(core.manager(), core.metrics.statistics, params.model, params.version));
}

/** 200 when the version is loaded; 503 with its state and why not, as Triton answers for a model not loaded. */
function kserveReady({ params, labels, core }: RouteRequest): Reply {
  const slot = resolveSlot(core, params.model!, params.version, labels);
  const status = core.manager().statusOf(slot);
  return status.state === 'READY' ? ok({ name: slot.name, ready: true }) : { status: 503, body: { name: slot.name, ready: false, state: status.state, reason: status.reason } };
}

async function tfPredict({ req, params, labels, core, bodies }: RouteRequest): Promise<Reply> {
  const slot = resolveSlot(core, params.model!, params.version ?? params.label, labels);
  const body = await readDecodedBody(req, core.maxBodyBytes);
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

/** A management request's JSON body: small, an object, `{}` when empty. */
async function jsonBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  const body = await readDecodedBody(req, MANAGEMENT_BODY_BYTES);
  if (body.length === 0) return {};
  let json: unknown;
  try {
    json = JSON.parse(Buffer.concat(body.chunks, body.length).toString('utf8'));
  } catch (error) {
    throw badInput(`the request body is not valid JSON: ${(error as Error).message}`);
  }
  if (!isObject(json)) throw badInput('the request body must be a JSON object');
  return json;
}

/** Management bodies hold a few parameters. */
const MANAGEMENT_BODY_BYTES = 64 * 1024;

async function repoIndex({ req, core }: RouteRequest): Promise<Reply> {
  const { ready } = await jsonBody(req);
  if (ready !== undefined && typeof ready !== 'boolean') throw badInput('"ready" must be true or false');
  return ok(repositoryIndex(core, ready === true));
}

async function repoLoad({ req, params, core }: RouteRequest): Promise<Reply> {
  const parameters = repositoryParameters((await jsonBody(req)).parameters);
  return ok({ name: params.model, versions: await repositoryLoad(core, params.model!, parameters) });
}

async function repoUnload({ req, params, core }: RouteRequest): Promise<Reply> {
  const parameters = repositoryParameters((await jsonBody(req)).parameters);
  return ok({ name: params.model, versions: await repositoryUnload(core, params.model!, parameters) });
}

type Doc = Pick<Route, 'summary' | 'body' | 'rawBody' | 'answer' | 'errors'>;

const v2Model = (suffix: string, methods: Route['methods'], doc: Doc): Route[] => [
  { path: `/v2/models/{model}${suffix}`, methods, auth: true, protocol: 'v2', ...doc },
  { path: `/v2/models/{model}/versions/{version}${suffix}`, methods, auth: true, protocol: 'v2', ...doc, summary: `${doc.summary} (one version or alias)` },
];

const v1Model = (suffix: string, methods: Route['methods'], doc: Doc): Route[] => [
  { path: `/v1/models/{model}${suffix}`, methods, auth: true, protocol: 'v1', ...doc },
  { path: `/v1/models/{model}/versions/{version}${suffix}`, methods, auth: true, protocol: 'v1', ...doc, summary: `${doc.summary} (one version)` },
  { path: `/v1/models/{model}/labels/{label}${suffix}`, methods, auth: true, protocol: 'v1', ...doc, summary: `${doc.summary} (a version label: an alias)` },
];

/** The status page: one file, no build step, no external assets; read once. */
let statusPage: Buffer | undefined;
const STATUS_PAGE = fileURLToPath(new URL('../../../static/status.html', import.meta.url));

function page(): Reply {
  statusPage ??= readFileSync(STATUS_PAGE);
  return ok(statusPage, {
    'content-type': 'text/html; charset=utf-8',
    // Everything is inline and same-origin: nothing else may load, and nothing may frame it.
    'content-security-policy': "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'cache-control': 'no-store',
  });
}

const MODEL_ERRORS = [404, 503];
const INFER_ERRORS = [400, 404, 413, 415, 503, 504, 507];
const MANAGE_ERRORS = [400, 403, 404, 409, 415, 422, 502, 503, 507];

export const ROUTES: Route[] = [
  { path: '/', methods: { GET: page }, auth: true, protocol: 'other', browser: true, summary: 'the status page: models, memory, request rates, latency, a test request', answer: { contentType: 'text/html', description: 'the page' }, errors: [] },
  { path: '/openapi.json', methods: { GET: ({ core }) => ok(openApiDocument(ROUTES, core.version)) }, auth: true, protocol: 'other', summary: 'this document: the REST API in OpenAPI 3.1, made from the route table', answer: { contentType: 'application/json', description: 'an OpenAPI 3.1 document' }, errors: [] },
  { path: '/v2/health/live', methods: { GET: () => ok({ live: true }) }, auth: false, protocol: 'other', summary: 'liveness: the process answers', answer: 'Live', errors: [] },
  {
    path: '/v2/health/ready',
    methods: { GET: ({ core }) => (core.ready() ? ok({ ready: true }) : { status: 503, body: { ready: false } }) },
    auth: true, protocol: 'other', summary: 'readiness: the models to load at start are loaded', answer: 'Ready', errors: [503],
  },
  { path: '/v2', methods: { GET: ({ core }) => ok({ name: 'maas', version: core.version, extensions: EXTENSIONS }) }, auth: true, protocol: 'other', summary: 'server metadata', answer: 'ServerMetadata', errors: [] },
  {
    path: '/metrics',
    methods: { GET: async ({ core }) => ok(await core.metrics.registry.metrics(), { 'content-type': core.metrics.registry.contentType }) },
    auth: true, protocol: 'other', summary: 'Prometheus metrics', answer: { contentType: 'text/plain', description: 'the Prometheus text format' }, errors: [],
  },
  ...v2Model('', { GET: kserveMetadata }, { summary: 'model metadata', answer: 'ModelMetadata', errors: MODEL_ERRORS }),
  ...v2Model('/ready', { GET: kserveReady }, { summary: 'model readiness: 200 when loaded', answer: 'ModelReady', errors: MODEL_ERRORS }),
  // An exact path is looked up before the templates: as in Triton, a model named `stats` has its statistics at /v2/models/stats/stats.
  { path: '/v2/models/stats', methods: { GET: kserveStatistics }, auth: true, protocol: 'other', summary: "Triton's statistics of every served version", answer: 'ModelStatistics', errors: [503] },
  ...v2Model('/config', { GET: kserveConfig }, { summary: "Triton's model configuration: max_batch_size, inputs and outputs, batching queue, instances, versions", answer: 'ModelConfig', errors: [404, 422, 503] }),
  ...v2Model('/stats', { GET: kserveStatistics }, { summary: "Triton's statistics: counts and cumulative times since the server started", answer: 'ModelStatistics', errors: MODEL_ERRORS }),
  ...v2Model('/infer', { POST: kserveInfer }, { summary: 'inference (KServe v2 JSON or the binary tensor extension)', body: 'InferRequest', rawBody: true, answer: 'InferResponse', errors: INFER_ERRORS }),
  ...v1Model('', { GET: tfStatus }, { summary: 'TF Serving model status', answer: 'TfModelStatus', errors: MODEL_ERRORS }),
  ...v1Model('/metadata', { GET: tfMetadata }, { summary: 'TF Serving model metadata', answer: 'TfModelMetadata', errors: [400, ...MODEL_ERRORS] }),
  ...v1Model(':predict', { POST: tfPredict }, { summary: 'TF Serving predict (row or columnar)', body: 'TfPredictRequest', answer: 'TfPredictResponse', errors: INFER_ERRORS }),
  { path: '/v2/repository/index', methods: { POST: repoIndex }, auth: true, protocol: 'other', summary: "Triton's repository index: every version this server could load, with its state", body: 'RepositoryIndexRequest', answer: 'RepositoryIndex', errors: [400, 403, 415] },
  { path: '/v2/repository/models/{model}/load', methods: { POST: repoLoad }, auth: true, protocol: 'other', summary: 'load a model now: the versions its policy selects, parameters.version, or parameters.source (oci://) pulled first', body: 'RepositoryModelRequest', answer: 'RepositoryModelResponse', errors: MANAGE_ERRORS },
  { path: '/v2/repository/models/{model}/unload', methods: { POST: repoUnload }, auth: true, protocol: 'other', summary: 'unload a model (or parameters.version) once its requests finish; refused until loaded again', body: 'RepositoryModelRequest', answer: 'RepositoryModelResponse', errors: MANAGE_ERRORS },
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
    throw new MaasError('MAAS_BAD_INPUT', `${JSON.stringify(clipped(segment))} in the request path is not valid percent-encoding`);
  }
}

export interface RouteMatch {
  route: Route;
  /** shared by every request to the same path: read, never written. */
  params: Readonly<Record<string, string | undefined>>;
}

/** Paths matched lately: a client calls the same few over and over. Bounded, since paths are the client's to choose. */
const MATCHED = new Map<string, RouteMatch>();
const MATCHED_MAX = 1024;

/** The route a path names and its parameters, or undefined. The path is not yet decoded. */
export function matchRoute(target: string): RouteMatch | undefined {
  const known = MATCHED.get(target);
  if (known) return known;
  // One trailing slash is forgiven; `//` is no path of ours, not the page at `/`.
  const path = target.length > 1 && target.endsWith('/') && !target.endsWith('//') ? target.slice(0, -1) : target;
  const exact = EXACT.get(path);
  if (exact) return { route: exact, params: {} };
  for (const { route, prefix, pattern, names } of TEMPLATED) {
    if (!path.startsWith(prefix)) continue;
    const match = pattern.exec(path);
    if (!match) continue;
    const params: Record<string, string | undefined> = {};
    for (let i = 0; i < names.length; i++) params[names[i]!] = decodeSegment(match[i + 1]!);
    if (MATCHED.size >= MATCHED_MAX) MATCHED.clear();
    const matched = { route, params: Object.freeze(params) };
    MATCHED.set(target, matched);
    return matched;
  }
  return undefined;
}
