import { readFileSync } from 'node:fs';

/** maas's own version, from package.json (one folder above both src/ and dist/). */
export const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
