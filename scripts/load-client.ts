/**
 * A closed-loop load generator for `npm run bench`: CONCURRENCY calls in flight for SECONDS,
 * each the same batch-1 request, over REST with the binary tensor extension or over gRPC with
 * raw contents. The same generator drives both, so the two transports are compared like for like
 * (wrk cannot speak gRPC). Prints one JSON line: requests/s, p50 and p99 in ms, errors.
 *
 *   tsx scripts/load-client.ts rest|grpc TARGET MODEL INPUT_NAME FLOATS SECONDS CONCURRENCY
 */
import { request as httpRequest, Agent } from 'node:http';
import * as grpc from '@grpc/grpc-js';
import * as loader from '@grpc/proto-loader';
import { PROTO_FILE, PROTO_OPTIONS } from '../src/serve/grpc/proto.js';

const [kind, target, model, input, floats, seconds, concurrency] = process.argv.slice(2);
const count = Number(floats);
const raw = Buffer.from(Float32Array.from({ length: count }, (_, i) => Math.sin(i)).buffer);

function restCall(): () => Promise<boolean> {
  const header = Buffer.from(JSON.stringify({ inputs: [{ name: input, shape: [1, count], datatype: 'FP32', parameters: { binary_data_size: raw.length } }], parameters: { binary_data_output: true } }));
  const body = Buffer.concat([header, raw]);
  const url = new URL(`${target}/v2/models/${model}/infer`);
  const agent = new Agent({ keepAlive: true, maxSockets: Number(concurrency) });
  return () => new Promise((resolve) => {
    const req = httpRequest(url, { method: 'POST', agent, headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length), 'content-length': String(body.length) } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200));
    });
    req.on('error', () => resolve(false));
    req.end(body);
  });
}

function grpcCall(): () => Promise<boolean> {
  const definition = loader.loadSync(PROTO_FILE, PROTO_OPTIONS);
  const Service = (grpc.loadPackageDefinition(definition).inference as grpc.GrpcObject).GRPCInferenceService as grpc.ServiceClientConstructor;
  const client = new Service(target!, grpc.credentials.createInsecure(), { 'grpc.max_receive_message_length': -1 });
  // Encoded once, answers not decoded: like the REST client, which sends fixed bytes and skips the body.
  const method = Service.service.ModelInfer!;
  const bytes = method.requestSerialize({ model_name: model, inputs: [{ name: input, datatype: 'FP32', shape: [1, count] }], raw_input_contents: [raw] });
  const same = (b: Buffer) => b;
  return () => new Promise((resolve) => client.makeUnaryRequest(method.path, same, same, bytes, (error) => resolve(!error)));
}

const call = kind === 'grpc' ? grpcCall() : restCall();
const latencies: number[] = [];
let errors = 0;
let end = 0;
async function loop(): Promise<void> {
  while (performance.now() < end) {
    const started = performance.now();
    if (await call()) latencies.push(performance.now() - started);
    else errors++;
  }
}
// Warm up for a second (connections, JIT), then measure.
const warm = performance.now() + 1000;
await Promise.all(Array.from({ length: Number(concurrency) }, async () => { while (performance.now() < warm) await call(); }));
const cpu = process.cpuUsage();
const began = performance.now();
end = began + Number(seconds) * 1000;
await Promise.all(Array.from({ length: Number(concurrency) }, loop));
const elapsed = (performance.now() - began) / 1000;
latencies.sort((a, b) => a - b);
const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN;
const used = process.cpuUsage(cpu);
console.log(JSON.stringify({ kind, rps: latencies.length / elapsed, p50: at(0.5), p99: at(0.99), errors, clientCpu: (used.user + used.system) / 1e6 / elapsed }));
process.exit(0);
