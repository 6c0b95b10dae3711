/**
 * The gRPC health checking protocol (grpc.health.v1.Health) beside the inference service: what
 * Kubernetes' gRPC probes and grpc_health_probe ask. Like ServerLive it needs no token (a probe
 * sends no metadata) and tells nothing but SERVING or NOT_SERVING: serving once the models to
 * load at start are loaded, until shutdown begins.
 */
import type * as grpc from '@grpc/grpc-js';
import { clipped } from '../../core/errors.js';
import type { ServingCore } from '../serving.js';

/** What a client may ask about: the whole server ('') and the inference service. */
const SERVICES = new Set(['', 'inference.GRPCInferenceService']);
/** How often an open Watch looks for a change of status. */
const WATCH_POLL_MS = 250;

type Status = 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';
interface HealthRequest {
  service: string;
}

export interface HealthService {
  handlers: grpc.UntypedServiceImplementation;
  /** Ends every open Watch, with NOT_SERVING once draining: a closing server waits for its calls. */
  endWatches(): void;
}

export function healthService(core: ServingCore, grpcModule: typeof grpc): HealthService {
  const watches = new Set<() => void>();
  const statusOf = (service: string): Status => (!SERVICES.has(service) ? 'SERVICE_UNKNOWN' : core.ready() ? 'SERVING' : 'NOT_SERVING');
  const handlers = {
    Check(call: grpc.ServerUnaryCall<HealthRequest, unknown>, callback: grpc.sendUnaryData<{ status: Status }>) {
      const status = statusOf(call.request.service);
      if (status !== 'SERVICE_UNKNOWN') return callback(null, { status });
      callback({
        code: grpcModule.status.NOT_FOUND,
        details: `no service ${JSON.stringify(clipped(call.request.service))} here: ask about "" (the server) or "inference.GRPCInferenceService"`,
      });
    },
    // As the protocol says: the status at once, then each change; an unknown service stays open as SERVICE_UNKNOWN.
    Watch(call: grpc.ServerWritableStream<HealthRequest, { status: Status }>) {
      let sent: Status | undefined;
      const send = () => {
        const status = statusOf(call.request.service);
        if (status !== sent) call.write({ status: (sent = status) });
      };
      const timer = setInterval(send, WATCH_POLL_MS).unref();
      const stop = () => {
        clearInterval(timer);
        watches.delete(end);
      };
      const end = () => {
        send();
        stop();
        call.end();
      };
      watches.add(end);
      call.on('cancelled', stop);
      send();
    },
  };
  return { handlers, endWatches: () => [...watches].forEach((end) => end()) };
}
