/** The Open Inference Protocol's service definition, loaded from the package's own .proto on first use. */
import { fileURLToPath } from 'node:url';
import type * as grpc from '@grpc/grpc-js';
import type { PackageDefinition } from '@grpc/proto-loader';

/** proto/ at the package root: two folders up from src/serve/grpc and from dist/serve/grpc alike. */
export const PROTO_FILE = fileURLToPath(new URL('../../../proto/open_inference_grpc.proto', import.meta.url));

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

/** The service's methods, its client (`ctor`), and the .proto as loaded (`packageDefinition`, what reflection describes). */
export async function loadServiceDefinition(grpcModule: typeof grpc): Promise<grpc.ServiceDefinition & { ctor: grpc.ServiceClientConstructor; packageDefinition: PackageDefinition }> {
  const loader = await import('@grpc/proto-loader');
  const packageDefinition = loader.loadSync(PROTO_FILE, PROTO_OPTIONS);
  const ctor = (grpcModule.loadPackageDefinition(packageDefinition).inference as grpc.GrpcObject).GRPCInferenceService as grpc.ServiceClientConstructor;
  return Object.assign(ctor.service, { ctor, packageDefinition });
}
