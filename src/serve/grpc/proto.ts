/** The Open Inference Protocol's and gRPC health checking's service definitions, loaded from the package's own .protos on first use. */
import { fileURLToPath } from 'node:url';
import type * as grpc from '@grpc/grpc-js';
import type { PackageDefinition } from '@grpc/proto-loader';

/** proto/ at the package root: two folders up from src/serve/grpc and from dist/serve/grpc alike. */
export const PROTO_FILE = fileURLToPath(new URL('../../../proto/open_inference_grpc.proto', import.meta.url));
export const HEALTH_PROTO_FILE = fileURLToPath(new URL('../../../proto/health.proto', import.meta.url));

/**
 * Field names as the .proto spells them, 64-bit integers as decimal strings (exact, unlike
 * numbers), absent repeated fields as empty lists.
 */
export const PROTO_OPTIONS = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true } as const;

export async function loadGrpc(): Promise<typeof grpc> {
  const grpcModule = await import('@grpc/grpc-js');
  // grpc-js logs its own errors to stderr (`E No address added...`) besides throwing them; maas
  // reports what it throws. GRPC_VERBOSITY still turns its logging on for debugging.
  if (process.env.GRPC_VERBOSITY === undefined) grpcModule.setLogVerbosity(grpcModule.logVerbosity.NONE);
  return grpcModule;
}

/**
 * The inference service's methods, its client (`ctor`), the health service (`health`), and the
 * .protos as loaded (`packageDefinition`, what reflection describes).
 */
export async function loadServiceDefinition(grpcModule: typeof grpc): Promise<grpc.ServiceDefinition & { ctor: grpc.ServiceClientConstructor; health: grpc.ServiceDefinition; packageDefinition: PackageDefinition }> {
  const loader = await import('@grpc/proto-loader');
  const packageDefinition = loader.loadSync([PROTO_FILE, HEALTH_PROTO_FILE], PROTO_OPTIONS);
  const loaded = grpcModule.loadPackageDefinition(packageDefinition);
  const ctor = (loaded.inference as grpc.GrpcObject).GRPCInferenceService as grpc.ServiceClientConstructor;
  const health = ((((loaded.grpc as grpc.GrpcObject).health as grpc.GrpcObject).v1 as grpc.GrpcObject).Health as grpc.ServiceClientConstructor).service;
  return Object.assign(ctor.service, { ctor, health, packageDefinition });
}
