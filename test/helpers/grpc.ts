/** A gRPC client of `maas serve --grpc-port`, built from the package's own .proto with @grpc/grpc-js, as any KServe client would be. */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as loader from '@grpc/proto-loader';
import { onTestFinished } from 'vitest';
import { HEALTH_PROTO_FILE, PROTO_FILE, PROTO_OPTIONS } from '../../src/serve/grpc/proto.js';

type Callback = (error: grpc.ServiceError | null, response: any) => void;
type Method = (request: unknown, metadata: grpc.Metadata, options: grpc.CallOptions, callback: Callback) => void;

export interface GrpcClient {
  /** resolves with the response, or rejects with the ServiceError (its `code` a grpc.status). */
  call(method: string, request: unknown, options?: { token?: string; deadlineMs?: number }): Promise<any>;
  close(): void;
}

const definition = loader.loadSync(PROTO_FILE, PROTO_OPTIONS);
const Service = (grpc.loadPackageDefinition(definition).inference as grpc.GrpcObject).GRPCInferenceService as grpc.ServiceClientConstructor;
/** The service's methods as the .proto lists them. */
export const SERVICE_METHODS = Object.keys(Service.service);

export function grpcClient(address: string, credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(), channelOptions: grpc.ChannelOptions = {}): GrpcClient {
  const client = new Service(address, credentials, { 'grpc.max_receive_message_length': -1, 'grpc.max_send_message_length': -1, ...channelOptions }) as unknown as Record<string, Method> & grpc.Client;
  onTestFinished(() => client.close());
  return {
    call: (method, request, options = {}) => new Promise((resolve, reject) => {
      const metadata = new grpc.Metadata();
      if (options.token) metadata.set('authorization', `Bearer ${options.token}`);
      const deadline = Date.now() + (options.deadlineMs ?? 30_000);
      client[method]!.call(client, request, metadata, { deadline }, (error, response) => (error ? reject(error) : resolve(response)));
    }),
    close: () => client.close(),
  };
}

const Health = ((((grpc.loadPackageDefinition(loader.loadSync(HEALTH_PROTO_FILE, PROTO_OPTIONS)).grpc as grpc.GrpcObject).health as grpc.GrpcObject).v1 as grpc.GrpcObject).Health) as grpc.ServiceClientConstructor;

export interface HealthClient {
  check(service: string): Promise<{ status: string }>;
  /** Each status the server sends to `onStatus`; resolves with the stream's final status ('OK' when the server ends it). */
  watch(service: string, onStatus: (status: string) => void): Promise<string>;
}

/** A client of grpc.health.v1.Health, as Kubernetes' gRPC probes and grpc_health_probe ask: no metadata. */
export function healthClient(address: string): HealthClient {
  const client = new Health(address, grpc.credentials.createInsecure()) as unknown as grpc.Client & Record<string, (...args: unknown[]) => any>;
  onTestFinished(() => client.close());
  return {
    check: (service) => new Promise((resolve, reject) => client.Check!({ service }, { deadline: Date.now() + 10_000 }, (error: grpc.ServiceError | null, response: { status: string }) => (error ? reject(error) : resolve(response)))),
    watch: (service, onStatus) => new Promise((resolve) => {
      const stream = client.Watch!({ service }) as grpc.ClientReadableStream<{ status: string }>;
      stream.on('data', (response: { status: string }) => onStatus(response.status));
      stream.on('status', (status: grpc.StatusObject) => resolve(grpc.status[status.code]!));
      stream.on('error', () => {});
    }),
  };
}

/** The status a call failed with, or 'OK'. */
export async function statusOf(call: Promise<unknown>): Promise<string> {
  try {
    await call;
    return 'OK';
  } catch (error) {
    return grpc.status[(error as grpc.ServiceError).code] ?? String((error as grpc.ServiceError).code);
  }
}

/** grpc-node's copy of the reflection .proto, as its ReflectionService loads it. */
const REFLECTION_PROTOS = join(dirname(createRequire(import.meta.url).resolve('@grpc/reflection')), '../proto/grpc/reflection');

/** One ServerReflectionInfo exchange (v1 or v1alpha): the answer to `request`, or the ServiceError. */
export function reflect(address: string, version: 'v1' | 'v1alpha', request: object, credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure()): Promise<any> {
  const reflection = grpc.loadPackageDefinition(loader.loadSync(join(REFLECTION_PROTOS, version, 'reflection.proto'), PROTO_OPTIONS)) as any;
  const client = new reflection.grpc.reflection[version].ServerReflection(address, credentials) as grpc.Client & Record<string, (metadata: grpc.Metadata, options: grpc.CallOptions) => grpc.ClientDuplexStream<unknown, any>>;
  onTestFinished(() => client.close());
  return new Promise((resolve, reject) => {
    const stream = client.ServerReflectionInfo!(new grpc.Metadata(), { deadline: Date.now() + 10_000 });
    stream.on('data', (answer) => {
      resolve(answer);
      stream.end();
    });
    stream.on('error', reject);
    stream.write(request);
  });
}

/** The services a server lists over reflection. */
export async function reflectedServices(address: string, version: 'v1' | 'v1alpha', credentials?: grpc.ChannelCredentials): Promise<string[]> {
  const answer = await reflect(address, version, { list_services: '*' }, credentials);
  return answer.list_services_response.service.map((s: { name: string }) => s.name);
}
