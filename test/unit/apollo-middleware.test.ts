import { parse } from 'node:url';
import { searchOf } from '../../src/http/apollo-middleware.js';

describe('the query string Apollo is given', () => {
  it('is what url.parse gave @as-integrations/express5, for every shape of request target', () => {
    const targets = [
      '/graphql',
      '/graphql?',
      '/graphql?query=%7B%20a%20%7D',
      '/graphql?a=1&b=?c',
      '/graphql?a=1#f?g',
      '/graphql#f?g',
      '/graphql/?x=1%00',
      '*',
      '/a?b#',
    ];
    for (const target of targets) expect([target, searchOf(target)]).toEqual([target, parse(target).search ?? '']);
  });
});
