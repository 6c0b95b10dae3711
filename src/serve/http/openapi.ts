/**
 * The REST API as an OpenAPI 3.1 document, made from the route table (routes.ts) each time it is
 * asked for: a route added to the table is documented, one removed disappears, so the document
 * cannot drift from what the server answers. Each route names the schemas of its body and answer;
 * the schemas are JSON Schema 2020-12, as OpenAPI 3.1 takes them.
 */

/** The documented shapes, by name: what a route's `body` and `answer` may name. */
export const SCHEMAS = {
  Error: {
    type: 'object', required: ['error'], properties: { error: { type: 'string', description: 'what went wrong, and often how to fix it' } },
  },
  Live: { type: 'object', required: ['live'], properties: { live: { type: 'boolean' } } },
  Ready: { type: 'object', required: ['ready'], properties: { ready: { type: 'boolean' } } },
  ServerMetadata: {
    type: 'object', required: ['name', 'version', 'extensions'],
    properties: { name: { type: 'string' }, version: { type: 'string' }, extensions: { type: 'array', items: { type: 'string' } } },
  },
  TensorMetadata: {
    type: 'object', required: ['name', 'datatype', 'shape'],
    properties: { name: { type: 'string' }, datatype: { type: 'string', examples: ['FP32'] }, shape: { type: 'array', items: { type: 'integer' }, description: '-1 for a dim that is not fixed' } },
  },
  ModelMetadata: {
    type: 'object', required: ['name', 'versions', 'platform', 'inputs', 'outputs'],
    properties: {
      name: { type: 'string' },
      versions: { type: 'array', items: { type: 'string' }, description: 'the versions served' },
      platform: { type: 'string' },
      inputs: { type: 'array', items: { $ref: '#/components/schemas/TensorMetadata' } },
      outputs: { type: 'array', items: { $ref: '#/components/schemas/TensorMetadata' } },
    },
  },
  ModelReady: {
    type: 'object', required: ['name', 'ready'],
    properties: { name: { type: 'string' }, ready: { type: 'boolean' }, state: { type: 'string' }, reason: { type: 'string' } },
  },
  Parameters: { type: 'object', additionalProperties: true },
  InferInput: {
    type: 'object', required: ['name', 'shape', 'datatype'],
    properties: {
      name: { type: 'string' },
      shape: { type: 'array', items: { type: 'integer', minimum: 0 } },
      datatype: { type: 'string', enum: ['BOOL', 'UINT8', 'UINT16', 'UINT32', 'UINT64', 'INT8', 'INT16', 'INT32', 'INT64', 'FP16', 'FP32', 'FP64', 'BYTES'] },
      parameters: { $ref: '#/components/schemas/Parameters', description: 'binary_data_size: the tensor follows the JSON as raw bytes' },
      data: { description: 'flat or nested values in row-major order', type: 'array' },
    },
  },
  InferRequestedOutput: {
    type: 'object', required: ['name'],
    properties: { name: { type: 'string' }, parameters: { $ref: '#/components/schemas/Parameters', description: 'binary_data: return this output as raw bytes' } },
  },
  InferRequest: {
    type: 'object', required: ['inputs'],
    properties: {
      id: { type: 'string' },
      parameters: { $ref: '#/components/schemas/Parameters', description: 'binary_data_output: every output as raw bytes' },
      inputs: { type: 'array', minItems: 1, items: { $ref: '#/components/schemas/InferInput' } },
      outputs: { type: 'array', minItems: 1, items: { $ref: '#/components/schemas/InferRequestedOutput' } },
    },
  },
  InferOutput: {
    type: 'object', required: ['name', 'shape', 'datatype'],
    properties: {
      name: { type: 'string' },
      shape: { type: 'array', items: { type: 'integer' } },
      datatype: { type: 'string' },
      parameters: { $ref: '#/components/schemas/Parameters' },
      data: { type: 'array' },
    },
  },
  InferResponse: {
    type: 'object', required: ['model_name', 'outputs'],
    properties: {
      model_name: { type: 'string' },
      model_version: { type: 'string' },
      id: { type: 'string' },
      outputs: { type: 'array', items: { $ref: '#/components/schemas/InferOutput' } },
    },
  },
  TfPredictRequest: {
    type: 'object',
    properties: {
      signature_name: { type: 'string', const: 'serving_default' },
      instances: { type: 'array', description: 'row format: one entry per example' },
      inputs: { description: 'columnar format: a tensor, or an object of tensors by input name' },
    },
  },
  TfPredictResponse: {
    type: 'object',
    properties: { predictions: { type: 'array' }, outputs: {} },
  },
  TfModelStatus: {
    type: 'object', required: ['model_version_status'],
    properties: {
      model_version_status: {
        type: 'array',
        items: {
          type: 'object',
          properties: {
            version: { type: 'string' },
            state: { type: 'string', enum: ['AVAILABLE', 'LOADING', 'UNLOADING', 'END'] },
            status: { type: 'object', properties: { error_code: { type: 'string' }, error_message: { type: 'string' } } },
          },
        },
      },
    },
  },
  TfModelMetadata: { type: 'object', required: ['model_spec', 'metadata'], properties: { model_spec: { type: 'object' }, metadata: { type: 'object' } } },
  RepositoryIndexRequest: { type: 'object', properties: { ready: { type: 'boolean', description: 'only versions loaded now' } } },
  VersionStatus: {
    type: 'object', required: ['name', 'version', 'state', 'reason'],
    properties: {
      name: { type: 'string' },
      version: { type: 'string' },
      state: { type: 'string', enum: ['READY', 'LOADING', 'UNLOADING', 'UNAVAILABLE'] },
      reason: { type: 'string' },
      digest: { type: 'string' },
      file_bytes: { type: 'integer' },
      resident_bytes: { type: ['integer', 'null'], description: "the process's resident-size growth measured around its load" },
      device: { type: ['string', 'null'] },
      pinned: { type: 'boolean' },
      in_flight: { type: 'integer' },
      queued: { type: 'integer' },
      idle_ms: { type: ['integer', 'null'] },
      keep_alive_ms_left: { type: ['integer', 'null'] },
      load_ms: { type: ['integer', 'null'] },
    },
  },
  RepositoryIndex: { type: 'array', items: { $ref: '#/components/schemas/VersionStatus' } },
  RepositoryModelRequest: {
    type: 'object',
    properties: {
      parameters: {
        type: 'object',
        properties: {
          version: { type: ['string', 'integer'], description: 'a version number or an alias' },
          source: { type: 'string', description: 'loads only: an oci:// reference pulled into the served registry first' },
        },
      },
    },
  },
  ModelConfig: {
    type: 'object', required: ['name', 'platform', 'max_batch_size', 'input', 'output'],
    description: "Triton's ModelConfig (model_config.proto) in JSON: enums as their names, int64 values as numbers",
    properties: {
      name: { type: 'string' },
      platform: { type: 'string' },
      backend: { type: 'string' },
      version_policy: { type: 'object' },
      max_batch_size: { type: 'integer', description: '0: no batching, every dim is in dims' },
      input: { type: 'array', items: { type: 'object' } },
      output: { type: 'array', items: { type: 'object' } },
      dynamic_batching: { type: 'object' },
      instance_group: { type: 'array', items: { type: 'object' } },
    },
  },
  Duration: {
    type: 'object', required: ['count', 'ns'],
    properties: { count: { type: 'integer' }, ns: { type: 'integer', description: 'cumulative nanoseconds' } },
  },
  ModelStatistics: {
    type: 'object', required: ['model_stats'],
    properties: {
      model_stats: {
        type: 'array',
        items: {
          type: 'object', required: ['name', 'version', 'last_inference', 'inference_count', 'execution_count', 'inference_stats', 'batch_stats'],
          properties: {
            name: { type: 'string' },
            version: { type: 'string' },
            last_inference: { type: 'integer', description: 'ms since the epoch of the last request answered or failed; 0: none yet' },
            inference_count: { type: 'integer', description: 'rows answered: a request of 8 rows counts 8' },
            execution_count: { type: 'integer', description: 'onnxruntime runs: a batch of merged requests counts 1' },
            inference_stats: {
              type: 'object',
              properties: Object.fromEntries(['success', 'fail', 'queue', 'compute_input', 'compute_infer', 'compute_output', 'cache_hit', 'cache_miss'].map((k) => [k, { $ref: '#/components/schemas/Duration' }])),
            },
            batch_stats: {
              type: 'array',
              items: {
                type: 'object',
                properties: { batch_size: { type: 'integer' }, ...Object.fromEntries(['compute_input', 'compute_infer', 'compute_output'].map((k) => [k, { $ref: '#/components/schemas/Duration' }])) },
              },
            },
            memory_usage: {
              type: 'array', description: "while loaded: what its load added to the process's resident size",
              items: { type: 'object', properties: { type: { type: 'string' }, id: { type: 'integer' }, byte_size: { type: 'integer' } } },
            },
          },
        },
      },
    },
  },
  RepositoryModelResponse: {
    type: 'object', required: ['name', 'versions'],
    properties: { name: { type: 'string' }, versions: { type: 'array', items: { $ref: '#/components/schemas/VersionStatus' } } },
  },
} as const;

export type SchemaName = keyof typeof SCHEMAS;

/** A route's answer: a schema of JSON, or another media type (a page, Prometheus text, this document). */
export type Answer = SchemaName | { contentType: string; description: string };

/** What openapi.ts needs of a route (routes.ts has the full type). */
export interface DocumentedRoute {
  path: string;
  methods: Partial<Record<'GET' | 'POST', unknown>>;
  auth: boolean;
  summary: string;
  body?: SchemaName;
  /** a raw body the route also takes, besides JSON (KServe's binary tensor extension). */
  rawBody?: boolean;
  answer: Answer;
  /** the errors it may answer, beyond 401 for routes that need the token. */
  errors: number[];
}

const ERROR_TEXT: Record<number, string> = {
  400: 'bad input: wrong datatype or shape, a missing input, a malformed body',
  401: 'missing or wrong token',
  403: 'management is off: a non-loopback address without a token',
  404: 'no such model, version or alias here',
  409: 'the version exists with other bytes',
  413: 'body over --max-body-mb (after decompression too)',
  415: 'a Content-Encoding other than gzip or deflate',
  422: 'the version cannot serve: a corrupt blob or an invalid model',
  502: 'the registry named by parameters.source failed',
  503: 'queue full, models loading, the memory budget full of busy versions, or shutting down (Retry-After)',
  504: 'the request outlived --timeout-ms',
  507: 'the version cannot fit the memory budget beside the pinned versions (MAAS_BUDGET_EXCEEDED)',
};

const json = (name: SchemaName) => ({ 'application/json': { schema: { $ref: `#/components/schemas/${name}` } } });

export function openApiDocument(routes: readonly DocumentedRoute[], version: string): object {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    const parameters = [...route.path.matchAll(/\{(\w+)\}/g)].map(([, name]) => ({ name, in: 'path', required: true, schema: { type: 'string' } }));
    for (const method of Object.keys(route.methods)) {
      const answer = typeof route.answer === 'string'
        ? { description: 'OK', content: json(route.answer) }
        : { description: route.answer.description, content: { [route.answer.contentType]: { schema: { type: 'string' } } } };
      const errors = [...route.errors, ...(route.auth ? [401] : [])].sort((a, b) => a - b);
      (paths[route.path] ??= {})[method.toLowerCase()] = {
        summary: route.summary,
        operationId: `${method.toLowerCase()}${route.path.replace(/\{(\w+)\}/g, (_, p: string) => `By${p[0]!.toUpperCase()}${p.slice(1)}`).replace(/[^A-Za-z0-9]+(.)?/g, (_, c: string | undefined) => (c ?? '').toUpperCase())}`,
        ...(parameters.length ? { parameters } : {}),
        ...(route.body ? {
          requestBody: {
            required: route.rawBody === true,
            content: {
              ...json(route.body),
              ...(route.rawBody ? { 'application/octet-stream': { schema: { type: 'string', contentMediaType: 'application/octet-stream', description: 'JSON of Inference-Header-Content-Length bytes, then the binary tensors' } } } : {}),
            },
          },
        } : {}),
        responses: {
          200: answer,
          ...Object.fromEntries(errors.map((status) => [status, { description: ERROR_TEXT[status] ?? 'error', content: json('Error') }])),
        },
        security: route.auth ? [{ bearer: [] }, { basic: [] }] : [],
      };
    }
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'maas',
      version,
      description: 'ONNX models served over the Open Inference Protocol (KServe v2) REST, TF Serving REST, and Triton\'s model repository extension.',
    },
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    paths,
    components: {
      schemas: SCHEMAS,
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'the server\'s --token' },
        basic: { type: 'http', scheme: 'basic', description: 'any user name, the token as the password (browsers)' },
      },
    },
  };
}
