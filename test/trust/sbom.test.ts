import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { describe, expect, it } from 'vitest';
import { mlp, writeModel } from '../../fixtures/models.js';
import { VERSION } from '../../src/core/version.js';
import { Registry } from '../../src/registry/registry.js';
import { type CdxBom, type CdxComponent, buildSbom, tensorFormat } from '../../src/trust/sbom.js';
import { type TestRegistry, makeRegistry } from '../helpers/registry.js';


/** The CycloneDX 1.6 JSON schema as @cyclonedx/cyclonedx-library ships it, with the two schemas it references. */
function cycloneDx16(): ValidateFunction {
  const res = join(dirname(createRequire(import.meta.url).resolve('@cyclonedx/cyclonedx-library/package.json')), 'res/schema');
  const load = (file: string) => JSON.parse(readFileSync(join(res, file), 'utf8')) as object;
  const ajv = new Ajv({
    strict: false, // the schema has its own keywords (meta:enum, deprecated)
    allErrors: true,
    schemas: {
      'http://cyclonedx.org/schema/spdx.SNAPSHOT.schema.json': load('spdx.SNAPSHOT.schema.json'),
      'http://cyclonedx.org/schema/jsf-0.82.SNAPSHOT.schema.json': load('jsf-0.82.SNAPSHOT.schema.json'),
    },
  });
  const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv; // a CommonJS default export
  addFormats(ajv);
  // Not in ajv-formats; the library's own validator accepts any iri-reference too.
  ajv.addFormat('iri-reference', true);
  ajv.addFormat('idn-email', /^[^\s@]+@[^\s@]+$/);
  return ajv.compile(load('bom-1.6.SNAPSHOT.schema.json'));
}

const validate = cycloneDx16();

function expectValid(bom: unknown): void {
  const ok = validate(bom);
  expect(validate.errors ?? [], JSON.stringify(validate.errors, null, 2)).toEqual([]);
  expect(ok).toBe(true);
}

const property = (c: { properties?: { name: string; value: string }[] }, name: string) => c.properties?.filter((p) => p.name === name).map((p) => p.value);
const hex = (digest: string) => digest.replace(/^sha256:/, '');

async function registered(reg: TestRegistry, ...args: string[]) {
  const r = await reg.cli('register', ...args, '--json');
  expect(r.exitCode, r.stdout + r.stderr).toBe(0);
  return r.json();
}

async function show(reg: TestRegistry, ref: string) {
  const r = await reg.cli('show', ref, '--json');
  expect(r.exitCode, r.stderr).toBe(0);
  return r.json();
}

async function sbom(reg: TestRegistry, ...args: string[]): Promise<CdxBom> {
  const r = await reg.cli('sbom', ...args);
  expect(r.exitCode, r.stdout + r.stderr).toBe(0);
  const bom = r.json<CdxBom>(); // exactly one JSON document on stdout
  expectValid(bom);
  return bom;
}

describe('the CycloneDX 1.6 schema check', () => {
  it('rejects a BOM that breaks it', async () => {
    const reg = await makeRegistry();
    await registered(reg, reg.fixture('mlp.onnx'));
    const bom = await sbom(reg, 'mlp@1');
    const broken = (change: (b: any) => void) => {
      const copy = structuredClone(bom) as any;
      change(copy);
      return validate(copy);
    };
    expect(broken(() => {})).toBe(true);
    expect(broken((b) => (b.components[0].type = 'onnx-model'))).toBe(false);
    expect(validate.errors?.some((e) => e.instancePath === '/components/0/type')).toBe(true);
    expect(broken((b) => (b.components[0].hashes[0].content = 'abc'))).toBe(false);
    expect(broken((b) => (b.components[0].modelCard.parameterCount = 67))).toBe(false);
    expect(broken((b) => (b.serialNumber = 'mlp-1'))).toBe(false);
    expect(broken((b) => (b.components[0].modelCard.modelParameters.inputs[0] = { format: 'x', shape: [1] }))).toBe(false);
  });
});

describe('maas sbom', () => {
  it('describes a version: hashes, purl by manifest digest, model card, tool; the same document with --json', async () => {
    const reg = await makeRegistry();
    await registered(reg, reg.fixture('mlp.onnx'), '--alias', 'prod', '--message', 'first cut');
    const shown = await show(reg, 'mlp@1');
    const bom = await sbom(reg, 'mlp@prod');

    expect(bom).toMatchObject({ bomFormat: 'CycloneDX', specVersion: '1.6', version: 1, $schema: 'http://cyclonedx.org/schema/bom-1.6.schema.json' });
    expect(bom.serialNumber).toMatch(/^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(Date.parse(bom.metadata.timestamp)).not.toBeNaN();
    expect(bom.metadata.tools.components).toEqual([{ type: 'application', name: 'maas', version: VERSION }]);

    const [model, ...others] = bom.components;
    expect(others).toEqual([]);
    const purl = `pkg:oci/mlp@sha256%3A${hex(shown.manifestDigest)}?tag=1`;
    expect(model).toMatchObject({
      type: 'machine-learning-model',
      'bom-ref': 'mlp@1',
      name: 'mlp',
      version: '1',
      description: 'first cut',
      hashes: [{ alg: 'SHA-256', content: hex(shown.files[0].digest) }],
      purl,
    });
    expect(model!.pedigree).toBeUndefined();
    expect(bom.metadata.component).toEqual({ type: 'machine-learning-model', name: 'mlp', version: '1', hashes: model!.hashes, purl });
    expect(property(model!, 'maas:oci:manifest-digest')).toEqual([shown.manifestDigest]);
    expect(property(model!, 'maas:alias')).toEqual(['prod']);
    expect(property(model!, 'maas:created')).toEqual([shown.created]);

    const card = model!.modelCard!;
    expect(card.modelParameters).toEqual({ inputs: [{ format: 'input: float32[batch, 4]' }], outputs: [{ format: 'output: float32[batch, 3]' }] });
    expect(property(card, 'maas:parameter-count')).toEqual(['67']); // 4×8 + 8 + 8×3 + 3
    expect(property(card, 'maas:precision')).toEqual(['float32']);
    expect(property(card, 'maas:quantization')).toEqual([]);
    expect(property(card, 'maas:onnx:graph-fingerprint')).toEqual([shown.graphFingerprint]);
    expect(property(card, 'maas:onnx:producer')).toEqual(['maas-fixtures 1']);
    expect(property(card, 'maas:onnx:opset:ai.onnx')).toEqual([String(shown.opsetImports[0].version)]);
    expect(card.quantitativeAnalysis).toBeUndefined();

    expect(model!.components).toEqual([{
      type: 'file',
      'bom-ref': 'mlp@1/mlp.onnx',
      'mime-type': 'application/vnd.cncf.model.weight.v1.raw',
      name: 'mlp.onnx',
      hashes: [{ alg: 'SHA-256', content: hex(shown.files[0].digest) }],
      properties: [{ name: 'maas:size', value: '564' }],
    }]);
    expect(bom.dependencies).toEqual([{ ref: 'mlp@1', dependsOn: ['mlp@1/mlp.onnx'] }, { ref: 'mlp@1/mlp.onnx', dependsOn: [] }]);

    const json = await sbom(reg, 'mlp@1', '--json');
    const { serialNumber: _s, metadata: { timestamp: _t, ...restMeta }, ...rest } = json;
    const { serialNumber: _s2, metadata: { timestamp: _t2, ...restMeta2 }, ...rest2 } = bom;
    expect({ ...rest, metadata: restMeta }).toEqual({ ...rest2, metadata: restMeta2 });
  });

  it('lists every file of a version with external data, each with its digest', async () => {
    const reg = await makeRegistry();
    const file = writeModel(reg.work, 'ext.onnx', mlp({ externalData: 'w.bin' }), 'w.bin');
    await registered(reg, file);
    const shown = await show(reg, 'ext');
    expect(shown.files).toHaveLength(2);
    const bom = await sbom(reg, 'ext');
    const model = bom.components[0]!;
    const onnx = shown.files.find((f: { path: string }) => f.path === 'ext.onnx');
    expect(model.hashes).toEqual([{ alg: 'SHA-256', content: hex(onnx.digest) }]);
    expect(model.components!.map((c) => [c.type, c.name, c.hashes![0]!.content, property(c, 'maas:size')![0]])).toEqual(
      shown.files.map((f: { path: string; digest: string; size: number }) => ['file', f.path, hex(f.digest), String(f.size)]),
    );
    expect(model.components!.map((c) => c.name).sort()).toEqual(['ext.onnx', 'w.bin']);
    expect(property(model.modelCard!, 'maas:parameter-count')).toEqual(['67']);
  });

  it('records a conversion: the source as ancestor (its registered version too), the steps, the accuracy report', async () => {
    const reg = await makeRegistry();
    const source = writeModel(reg.work, 'model.onnx', mlp({ seed: 7 }));
    await registered(reg, source, '--name', 'mlp');
    await registered(reg, source, '--name', 'mlp', '--fp16', '--keep-io-types', '--no-latency');
    const original = await show(reg, 'mlp@1');
    const converted = await show(reg, 'mlp@2');
    const conversion = converted.conversion;
    expect(conversion.source.digest).toBe(original.files[0].digest);

    const bom = await sbom(reg, 'mlp@2');
    const model = bom.components[0]!;
    expect(model.hashes).toEqual([{ alg: 'SHA-256', content: hex(converted.files[0].digest) }]);
    const [ancestor, ...more] = model.pedigree!.ancestors;
    expect(more).toEqual([]);
    expect(ancestor).toMatchObject({
      type: 'machine-learning-model',
      'bom-ref': 'mlp@1',
      name: 'mlp',
      version: '1',
      hashes: [{ alg: 'SHA-256', content: hex(original.files[0].digest) }],
      purl: `pkg:oci/mlp@sha256%3A${hex(original.manifestDigest)}?tag=1`,
    });
    expect(property(ancestor!, 'maas:onnx:graph-fingerprint')).toEqual([original.graphFingerprint]);
    expect(property(ancestor!, 'maas:source:file')).toEqual(['model.onnx']);
    expect(model.pedigree!.notes).toContain(conversion.steps[0]);
    expect(model.pedigree!.notes).toContain(original.files[0].digest);
    expect(property(model, 'maas:conversion:step')).toEqual(conversion.steps);
    expect(conversion.steps[0]).toMatch(/^fp16/);

    const card = model.modelCard!;
    expect(card.modelParameters.inputs).toEqual([{ format: 'input: float32[batch, 4]' }]); // --keep-io-types
    expect(property(card, 'maas:precision')).toEqual(['float16']);
    expect(property(card, 'maas:onnx:weight-dtype')).toEqual(converted.precisions);
    expect(property(card, 'maas:parameter-count')).toEqual([String(converted.parameterCount)]);
    expect(property(card, 'maas:accuracy:passed')).toEqual(['true']);
    expect(property(card, 'maas:accuracy:tolerance')).toEqual([String(conversion.accuracy.tolerance)]);
    const metrics = card.quantitativeAnalysis!.performanceMetrics;
    expect(metrics[0]).toEqual({ type: 'normalized-error', value: String(conversion.accuracy.worst) });
    expect(metrics).toContainEqual({ type: 'cosine-similarity', value: String(conversion.accuracy.outputs[0].cosine), slice: 'output:output' });
    expect(metrics).toContainEqual({ type: 'max-abs-error', value: String(conversion.accuracy.outputs[0].maxAbsError), slice: 'output:output' });

    // Without a registered source the ancestor is the file alone: its digest and fingerprint.
    const registry = await Registry.open({ cwd: reg.dir, env: reg.env });
    const alone = buildSbom(registry.readVersion('mlp', 2), { aliases: [], tool: { name: 'maas', version: VERSION }, now: () => new Date(0) });
    expectValid(alone);
    const bare = alone.components[0]!.pedigree!.ancestors[0] as CdxComponent;
    expect(bare).toMatchObject({ 'bom-ref': 'mlp@2:source', name: 'model.onnx', hashes: [{ alg: 'SHA-256', content: hex(original.files[0].digest) }] });
    expect(bare.purl).toBeUndefined();
  });

  it('names the quantization of an int8 version', async () => {
    const reg = await makeRegistry();
    const source = writeModel(reg.work, 'model.onnx', mlp({ seed: 3 }));
    await registered(reg, source, '--name', 'q', '--int8', '--no-latency');
    const shown = await show(reg, 'q');
    const card = (await sbom(reg, 'q')).components[0]!.modelCard!;
    expect(property(card, 'maas:quantization')).toEqual([shown.conversion.steps.find((s: string) => s.startsWith('int8'))]);
    expect(property(card, 'maas:quantization')![0]).toMatch(/^int8 dynamic/);
    expect(property(card, 'maas:onnx:weight-dtype')).toEqual(shown.precisions);
    expect(shown.precisions).toContain('int8');
  });

  it('writes the BOM with -o and says so on one line, or as a result under --json', async () => {
    const reg = await makeRegistry();
    await registered(reg, reg.fixture('mlp.onnx'));
    const human = await reg.cli('sbom', 'mlp@1', '-o', 'out/mlp.cdx.json');
    expect(human.exitCode, human.stderr).toBe(0);
    const path = join(reg.dir, 'out/mlp.cdx.json');
    expect(human.stdout).toMatch(new RegExp(`^✔ Wrote the CycloneDX 1.6 BOM of mlp@1 to ${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(\\d+(\\.\\d+)? K?B\\)\n$`));
    expectValid(JSON.parse(readFileSync(path, 'utf8')));

    const json = await reg.cli('sbom', 'mlp@1', '--output', path, '--json');
    expect(json.exitCode, json.stderr).toBe(0);
    const result = json.json();
    const written = readFileSync(path, 'utf8');
    expect(result).toEqual({ ref: 'mlp@1', output: path, bytes: Buffer.byteLength(written), serialNumber: JSON.parse(written).serialNumber });
  });

  it('fails with the registry\'s not-found error for an unknown version', async () => {
    const reg = await makeRegistry();
    await registered(reg, reg.fixture('mlp.onnx'));
    const r = await reg.cli('sbom', 'mlp@9', '--json');
    expect(r.exitCode).toBe(4);
    expect(r.json().error.code).toBe('MAAS_VERSION_NOT_FOUND');
    const missing = await reg.cli('sbom', 'nope');
    expect(missing.exitCode).toBe(4);
    expect(missing.stdout).toBe('');
    expect(missing.stderr).toContain("no model named 'nope'");
  });
});

describe('buildSbom', () => {
  it('is deterministic but for the serial number and timestamp, which it takes when given', async () => {
    const reg = await makeRegistry();
    await registered(reg, reg.fixture('mlp.onnx'));
    const registry = await Registry.open({ cwd: reg.dir, env: reg.env });
    const record = registry.readVersion('mlp', 1);
    const context = { aliases: ['b', 'a'], tool: { name: 'maas', version: '9.9.9' }, now: () => new Date('2025-01-02T03:04:05.678Z'), serialNumber: 'urn:uuid:00000000-0000-4000-8000-000000000001' };
    const one = buildSbom(record, context);
    expect(buildSbom(record, context)).toEqual(one);
    expectValid(one);
    expect(one.serialNumber).toBe(context.serialNumber);
    expect(one.metadata.timestamp).toBe('2025-01-02T03:04:05Z');
    expect(property(one.components[0]!, 'maas:alias')).toEqual(['a', 'b']);
    const { serialNumber: _given, ...unnumbered } = context;
    const { serialNumber: _a, ...random } = buildSbom(record, unnumbered);
    const { serialNumber: _b, ...given } = one;
    expect(random).toEqual(given);
    expect(_a).not.toBe(_b);
  });

  it('writes tensors as name, dtype and shape', () => {
    expect(tensorFormat({ name: 'x', dtype: 'float16', shape: ['batch', null, 3] })).toBe('x: float16[batch, ?, 3]');
    expect(tensorFormat({ name: 's', dtype: 'int64', shape: [] })).toBe('s: int64[]');
    expect(tensorFormat({ name: 'seq', dtype: 'sequence<float32>', shape: null })).toBe('seq: sequence<float32>');
  });
});
