import { describe, expect, it } from 'vitest';
import { matchRoute } from '../../src/serve/http/routes.js';

describe('the route table', () => {
  it('matches a path the same way however often it is asked, past the bound of remembered paths', () => {
    const first = matchRoute('/v2/models/m%2Dx/versions/3/infer');
    expect(first?.route.path).toBe('/v2/models/{model}/versions/{version}/infer');
    expect(first?.params).toEqual({ model: 'm-x', version: '3' });
    expect(Object.isFrozen(first?.params)).toBe(true); // shared between requests: never written
    for (let i = 0; i < 3000; i++) expect(matchRoute(`/v2/models/m${i}/infer`)?.params).toEqual({ model: `m${i}` });
    expect(matchRoute('/v2/models/m%2Dx/versions/3/infer')?.params).toEqual({ model: 'm-x', version: '3' });
    expect(matchRoute('/v2/models/m/infer/')?.route.path).toBe('/v2/models/{model}/infer');
    expect(matchRoute('/v2/models/a/b/c')).toBeUndefined();
  });

  it('refuses a broken escape every time, not only the first', () => {
    for (let i = 0; i < 2; i++) expect(() => matchRoute('/v2/models/%zz/infer')).toThrow('not valid percent-encoding');
  });
});
