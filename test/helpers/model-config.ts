/**
 * Triton's ModelConfig as protobuf itself parses it: the package's .proto compiled by Debian's
 * protoc for python3-protobuf, whose text-format and JSON parsers refuse a field or enum value
 * the .proto (written from Triton's model_config.proto) does not have.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { expect } from 'vitest';
import { PROTO_FILE } from '../../src/serve/grpc/proto.js';

const PYTHON = '/usr/bin/python3';

export const HAVE_PROTOBUF = spawnSync('protoc', ['--version'], { stdio: 'ignore' }).status === 0
  && spawnSync(PYTHON, ['-c', 'import google.protobuf'], { stdio: 'ignore' }).status === 0;

/** Parses ModelConfigs given on stdin as a JSON list of texts, JSON ones or with --text config.pbtxt ones; prints them as protobuf's JSON. */
const PARSE = `
import json, sys
sys.path.insert(0, sys.argv[1])
from google.protobuf import json_format, text_format
import open_inference_grpc_pb2 as pb
parse = text_format.Parse if sys.argv[2:] == ['--text'] else json_format.Parse
configs = [parse(text, pb.ModelConfig()) for text in json.load(sys.stdin)]
print(json.dumps([json.loads(json_format.MessageToJson(c, preserving_proto_field_name=True)) for c in configs]))
`;

/** ModelConfig's 64-bit integer fields, which protobuf's JSON and proto-loader write as decimal strings. */
const INT64_FIELDS = new Set(['dims', 'shape', 'versions', 'max_queue_delay_microseconds']);

/** Those fields as numbers again, for expectations that read as REST answers them. */
export function int64AsNumbers(value: unknown, key = ''): unknown {
  if (Array.isArray(value)) return value.map((v) => int64AsNumbers(v, key));
  if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, int64AsNumbers(v, k)]));
  return INT64_FIELDS.has(key) && typeof value === 'string' ? Number(value) : value;
}

export interface ModelConfigParser {
  /** Each text as protobuf parsed it (fields at their default are absent, as in protobuf's JSON), 64-bit fields as numbers. */
  parse(texts: string[], format: 'json' | 'text'): any[];
  dispose(): void;
}

/** Compiles the .proto once into a temporary folder; call dispose when done (afterAll). */
export function modelConfigParser(): ModelConfigParser {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'maas-model-config-')));
  const compiled = spawnSync('protoc', [`--python_out=${dir}`, `-I${dirname(PROTO_FILE)}`, basename(PROTO_FILE)], { encoding: 'utf8' });
  expect(compiled.status, compiled.stderr).toBe(0);
  writeFileSync(join(dir, 'parse.py'), PARSE);
  return {
    parse(texts, format) {
      const run = spawnSync(PYTHON, [join(dir, 'parse.py'), dir, ...(format === 'text' ? ['--text'] : [])], { input: JSON.stringify(texts), encoding: 'utf8' });
      expect(run.status, run.stderr).toBe(0);
      return int64AsNumbers(JSON.parse(run.stdout)) as any[];
    },
    dispose: () => rmSync(dir, { recursive: true, force: true }),
  };
}
