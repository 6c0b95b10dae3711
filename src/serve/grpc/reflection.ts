/**
 * gRPC server reflection (grpc.reflection.v1 and v1alpha, grpc-node's @grpc/reflection) of the
 * .proto the service is built from, so grpcurl, grpcui, Evans and Postman need no -proto.
 */
import type * as grpc from '@grpc/grpc-js';
import type { PackageDefinition } from '@grpc/proto-loader';
import type { IDescriptorProto, IFileDescriptorProto } from 'protobufjs/ext/descriptor/index.js';

/** protoc's name for a map field's entry message: `parameters` → `ParametersEntry`, `data_map` → `DataMapEntry`. */
function mapEntryName(field: string): string {
  return `${field.split('_').map((part) => part.charAt(0).toUpperCase() + part.slice(1)).join('')}Entry`;
}

/**
 * protobufjs (under proto-loader) names a map field's entry message after the field alone
 * (`Parameters`), where the descriptor rules say `ParametersEntry`: protobuf's own descriptor
 * pools and grpcurl ("incorrect implicit map entry name", fullstorydev/grpcurl#519) refuse the
 * file as it comes, and the protocol's `parameters` are such maps.
 */
function nameMapEntries(message: IDescriptorProto): void {
  for (const field of message.field ?? []) {
    const entry = message.nestedType?.find((nested) => nested.options?.mapEntry && nested.name === field.typeName);
    if (entry) entry.name = field.typeName = mapEntryName(field.name!);
  }
  message.nestedType?.forEach(nameMapEntries);
}

export async function addReflection(server: grpc.Server, packageDefinition: PackageDefinition): Promise<void> {
  const [{ ReflectionService }, { default: descriptor }] = await Promise.all([import('@grpc/reflection'), import('protobufjs/ext/descriptor/index.js')]);
  const withEntryNames = (bytes: Buffer) => {
    const file = descriptor.FileDescriptorProto.decode(bytes) as IFileDescriptorProto;
    file.messageType?.forEach(nameMapEntries);
    return Buffer.from(descriptor.FileDescriptorProto.encode(file).finish());
  };
  // Reflection reads the whole file from each message's and enum's fileDescriptorProtos; services have none.
  const described: PackageDefinition = {};
  for (const [name, definition] of Object.entries(packageDefinition)) {
    const files = definition.fileDescriptorProtos;
    described[name] = Array.isArray(files) ? { ...definition, fileDescriptorProtos: files.map(withEntryNames) } as typeof definition : definition;
  }
  new ReflectionService(described).addToServer(server);
}
