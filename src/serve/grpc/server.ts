/**
 * The gRPC transport of `maas serve`: the Open Inference Protocol's GRPCInferenceService on
 * @grpc/grpc-js, over the same core as REST (sessions, batching queue, limits, token, metrics).
 * Each maas error becomes the status a Triton or KServe client expects.
 */
import type * as grpc from '@grpc/grpc-js';
import { clipped, isMaasError, messageOf } from '../../core/errors.js';
import { modelMetadata } from '../../inference/protocol.js';
import { checkToken } from '../auth.js';
import { EXTENSIONS, listenError, type RequestLabels, type ServingCore, UNKNOWN, infer, resolveSlot, servedModelConfig, servedVersions } from '../serving.js';
import type { TlsMaterial } from '../tls.js';
import { repositoryIndex, repositoryLoad, repositoryParameters, repositoryUnload } from '../repository.js';
import { modelStatistics } from '../statistics.js';
import { decodeModelInfer, encodeModelInfer } from './codec.js';
import { readModelInferRequest, writeModelInferResponse } from './wire.js';
import { loadGrpc, loadServiceDefinition } from './proto.js';
import { healthService } from './health.js';
import { addReflection } from './reflection.js';

export interface GrpcTransport {
  /** host:port, as a gRPC client dials it. */
  address: string;
  port: number;
  close(): Promise<void>;
}

/** grpc.status values by maas error code; anything else is INTERNAL. */
const STATUS_BY_CODE: Partial<Record<string, number>> = {
  MAAS_BAD_INPUT: 3, // INVALID_ARGUMENT
  MAAS_USAGE: 3,
  MAAS_UNAUTHORIZED: 16, // UNAUTHENTICATED
  MAAS_FORBIDDEN: 7, // PERMISSION_DENIED
  MAAS_REMOTE_NOT_FOUND: 5,
  MAAS_FILE_NOT_FOUND: 5,
  MAAS_VERSION_CONFLICT: 6, // ALREADY_EXISTS
  MAAS_MODEL_INVALID: 9, // FAILED_PRECONDITION
  MAAS_VERIFY_FAILED: 9,
  MAAS_REMOTE_UNREACHABLE: 14, // UNAVAILABLE
  MAAS_REMOTE_UNAUTHORIZED: 14,
  MAAS_REMOTE_REJECTED: 14,
  MAAS_DIGEST_MISMATCH: 14,
  MAAS_MODEL_NOT_FOUND: 5, // NOT_FOUND
  MAAS_VERSION_NOT_FOUND: 5,
  MAAS_ALIAS_NOT_FOUND: 5,
  MAAS_PAYLOAD_TOO_LARGE: 8, // RESOURCE_EXHAUSTED
  MAAS_BUDGET_EXCEEDED: 8,
  MAAS_OVERLOADED: 14, // UNAVAILABLE, as Triton answers "Exceeds maximum queue size": clients retry it
  MAAS_TIMEOUT: 4, // DEADLINE_EXCEEDED
  MAAS_MODEL_NOT_READY: 14, // UNAVAILABLE
  MAAS_INFERENCE_FAILED: 13, // INTERNAL
};
const INTERNAL = 13;

/** The calls about one model: counted in the request metrics, as REST's model routes are. */
const MODEL_CALLS = new Set(['ModelInfer', 'ModelMetadata', 'ModelReady', 'ModelConfig']);

/** The longest status message sent: it travels as a header, which clients bound (grpc-js: 8 KB of metadata). */
const MAX_DETAILS = 2000;

function statusOf(error: unknown, grpcModule: typeof grpc): Partial<grpc.StatusObject> {
  const metadata = new grpcModule.Metadata();
  // Well-formed text: grpc-js percent-encodes it with encodeURI, which throws on half a surrogate pair.
  const details = (message: string) => clipped(message, MAX_DETAILS).replace(/\p{Cs}/gu, '\uFFFD'); // a lone surrogate, in unicode mode
  if (!isMaasError(error)) return { code: INTERNAL, details: details(`internal error: ${messageOf(error)}`), metadata };
  metadata.set('maas-error-code', error.code);
  return { code: STATUS_BY_CODE[error.code] ?? INTERNAL, details: details(error.message), metadata };
}

interface RepositoryRequest {
  model_name: string;
  parameters: Record<string, { string_param?: string; int64_param?: string; bool_param?: boolean; parameter_choice?: string }>;
}

/** ModelRepositoryParameter values as plain ones: a string, an int64 (as proto-loader gives it, a decimal string) or a bool. */
function parameterValues(parameters: RepositoryRequest['parameters']): Record<string, unknown> {
  return Object.fromEntries(Object.entries(parameters ?? {}).map(([key, p]) => {
    const value = p.parameter_choice === 'int64_param' ? Number(p.int64_param) : p.parameter_choice === 'bool_param' ? p.bool_param : p.string_param;
    return [key, value];
  }));
}

/** The client's deadline in ms since the epoch, if it set one. */
function deadlineOf(call: grpc.ServerUnaryCall<unknown, unknown>): number | undefined {
  const deadline = call.getDeadline();
  const at = deadline instanceof Date ? deadline.getTime() : deadline;
  return Number.isFinite(at) ? at : undefined;
}

/** The TLS files as grpc-js's certificate provider: the same watcher feeds both transports. */
function certificateProvider(tls: TlsMaterial) {
  const identity = () => ({ certificate: tls.current().cert, privateKey: tls.current().key });
  const ca = () => ({ caCertificate: tls.current().ca! });
  const identityListeners = new Set<(u: ReturnType<typeof identity>) => void>();
  const caListeners = new Set<(u: ReturnType<typeof ca>) => void>();
  tls.onChange(() => {
    for (const l of identityListeners) l(identity());
    if (tls.mutual) for (const l of caListeners) l(ca());
  });
  return {
    // The first update is delivered on a later tick: grpc-js registers its own watcher only after adding the listener.
    addIdentityCertificateListener: (l: (u: ReturnType<typeof identity>) => void) => {
      identityListeners.add(l);
      setImmediate(() => identityListeners.has(l) && l(identity()));
    },
    removeIdentityCertificateListener: (l: (u: ReturnType<typeof identity>) => void) => identityListeners.delete(l),
    addCaCertificateListener: (l: (u: ReturnType<typeof ca>) => void) => {
      caListeners.add(l);
      setImmediate(() => caListeners.has(l) && l(ca()));
    },
    removeCaCertificateListener: (l: (u: ReturnType<typeof ca>) => void) => caListeners.delete(l),
  };
}

export async function listenGrpc(core: ServingCore, options: { host: string; port: number; tls: TlsMaterial | undefined }): Promise<GrpcTransport> {
  const grpcModule = await loadGrpc();
  const definition = await loadServiceDefinition(grpcModule);
  // ModelInfer is read and written by hand (wire.ts); a message that does not parse is the client's INVALID_ARGUMENT.
  const { ctor: _ctor, health: healthDefinition, packageDefinition, ...methods } = definition;
  const service: grpc.ServiceDefinition = {
    ...methods,
    ModelInfer: { ...definition.ModelInfer!, requestDeserialize: (bytes: Buffer) => bytes, responseSerialize: writeModelInferResponse },
  };
  const server = new grpcModule.Server({
    'grpc.max_receive_message_length': core.maxBodyBytes,
    'grpc.max_send_message_length': -1,
    // channelz keeps per-call statistics for a debugging service maas does not expose.
    'grpc.enable_channelz': 0,
  });
  // Reflection and health need no token, as ServerLive: one tells only the protocol's schema,
  // which ships in the package, the other only SERVING or NOT_SERVING (probes send no metadata).
  await addReflection(server, packageDefinition);
  const health = healthService(core, grpcModule);
  server.addService(healthDefinition, health.handlers);

  /** One unary call, start to end: auth, the handler, metrics, and a status for whatever goes wrong. */
  const unary = <Req, Res>(method: string, needsAuth: boolean, handler: (request: Req, labels: RequestLabels, call: grpc.ServerUnaryCall<Req, Res>) => Res | Promise<Res>) =>
    (call: grpc.ServerUnaryCall<Req, Res>, callback: grpc.sendUnaryData<Res>) => {
      const started = performance.now();
      // A call that names a model is counted whatever fails first (token, message): UNKNOWN until it resolves.
      const named = MODEL_CALLS.has(method) ? UNKNOWN : '';
      const labels: RequestLabels = { model: named, version: named, protocol: 'grpc' };
      const finish = (code: number) => {
        const seconds = (performance.now() - started) / 1000;
        if (labels.model) core.metrics.request(labels, grpcModule.status[code] ?? String(code), seconds);
        if (core.jsonLogs) core.logEvent({ event: 'request', method: `grpc ${method}`, status: grpcModule.status[code] ?? code, ms: Math.round(seconds * 1e4) / 10, ...(labels.model ? { model: labels.model, version: labels.version } : {}) });
      };
      let response: Res | Promise<Res>;
      try {
        if (needsAuth) checkToken(call.metadata.get('authorization')[0] as string | undefined, core.token);
        response = handler(call.request, labels, call);
      } catch (error) {
        response = Promise.reject(error);
      }
      Promise.resolve(response).then(
        (response) => {
          callback(null, response);
          finish(grpcModule.status.OK);
        },
        (error: unknown) => {
          const status = statusOf(error, grpcModule);
          callback(status as grpc.ServiceError);
          finish(status.code!);
        },
      ).catch((error: unknown) => {
        // No call may end the process: what grpc-js throws while answering costs this call only.
        core.logFailure('request-error', `a gRPC ${method} call failed inside the server: ${messageOf(error)}`);
      });
    };

  server.addService(service, {
    ServerLive: unary('ServerLive', false, () => ({ live: true })),
    ServerReady: unary('ServerReady', true, () => ({ ready: core.ready() })),
    ServerMetadata: unary('ServerMetadata', true, () => ({ name: 'maas', version: core.version, extensions: EXTENSIONS })),
    ModelReady: unary('ModelReady', true, (r: { name: string; version: string }, labels) => {
      const slot = resolveSlot(core, r.name, r.version || undefined, labels);
      return { ready: core.manager().statusOf(slot).state === 'READY' };
    }),
    ModelMetadata: unary('ModelMetadata', true, (r: { name: string; version: string }, labels) => {
      const slot = resolveSlot(core, r.name, r.version || undefined, labels);
      return modelMetadata(slot.name, servedVersions(core, slot.name), slot.signature);
    }),
    ModelInfer: unary('ModelInfer', true, async (bytes: Buffer, labels, call) => {
      const r = readModelInferRequest(bytes);
      const slot = resolveSlot(core, r.model_name, r.model_version || undefined, labels);
      const { feeds, outputs } = decodeModelInfer(r, slot.signature);
      let runtime = core.manager().acquire(slot);
      if (runtime instanceof Promise) runtime = await runtime; // only while the version loads
      const results = await infer(core, runtime, feeds, outputs, deadlineOf(call));
      return encodeModelInfer({ model: slot.name, version: slot.version, id: r.id, outputs: results, order: outputs });
    }),
    ModelConfig: unary('ModelConfig', true, (r: { name: string; version: string }, labels) => ({
      config: servedModelConfig(core, resolveSlot(core, r.name, r.version || undefined, labels)),
    })),
    ModelStatistics: unary('ModelStatistics', true, (r: { name: string; version: string }, labels) => {
      if (r.name) resolveSlot(core, r.name, r.version || undefined, labels);
      return modelStatistics(core.manager(), core.metrics.statistics, r.name || undefined, r.version || undefined);
    }),
    RepositoryIndex: unary('RepositoryIndex', true, (r: { ready: boolean }) => ({
      models: repositoryIndex(core, r.ready).map(({ name, version, state, reason }) => ({ name, version, state, reason })),
    })),
    RepositoryModelLoad: unary('RepositoryModelLoad', true, async (r: RepositoryRequest) => {
      await repositoryLoad(core, r.model_name, repositoryParameters(parameterValues(r.parameters)));
      return {};
    }),
    RepositoryModelUnload: unary('RepositoryModelUnload', true, async (r: RepositoryRequest) => {
      await repositoryUnload(core, r.model_name, repositoryParameters(parameterValues(r.parameters)));
      return {};
    }),
  });

  const credentials = options.tls
    ? grpcModule.experimental.createCertificateProviderServerCredentials(certificateProvider(options.tls), options.tls.mutual ? certificateProvider(options.tls) : null, options.tls.mutual)
    : grpcModule.ServerCredentials.createInsecure();
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${host}:${options.port}`, credentials, (error, bound) => (error ? reject(error) : resolve(bound)));
  }).catch((error: unknown) => {
    server.forceShutdown();
    throw listenError(/address already in use/i.test(messageOf(error)) ? Object.assign(new Error(), { code: 'EADDRINUSE' }) : error, options.host, options.port, '--grpc-port');
  });
  return {
    address: `${host}:${port}`,
    port,
    close: () => new Promise<void>((resolve) => {
      // In-flight calls finish; new ones get UNAVAILABLE. A call still running at the grace end is cut.
      health.endWatches();
      const grace = setTimeout(() => server.forceShutdown(), core.timeoutMs + 1000);
      server.tryShutdown(() => {
        clearTimeout(grace);
        resolve();
      });
    }),
  };
}
