// Preload (`node --import`) that writes every module URL this process resolves to $MAAS_LOADS_FILE, one per line.
import { register } from 'node:module';

register(`data:text/javascript,${encodeURIComponent(`
import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  appendFileSync(${JSON.stringify(process.env.MAAS_LOADS_FILE)}, result.url + '\\n');
  return result;
}`)}`);
