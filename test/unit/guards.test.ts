import { createHash } from 'node:crypto';
import { getOperationAST, parse } from 'graphql';
import { buildAppSchema } from '../../src/schema.js';
import { measureOperation } from '../../src/guards/query-limits.js';
import { addressKey } from '../../src/guards/rate-limits.js';
import { TrustedDocuments } from '../../src/guards/trusted-documents.js';

const schema = await buildAppSchema();
const measure = (query: string, variables: Record<string, unknown> = {}) => {
  const document = parse(query);
  return measureOperation(schema, document, getOperationAST(document)!, variables);
};

describe('the query measure', () => {
  it('charges a page’s items `first` times, and its other fields once', () => {
    const one = measure('{ tasks(first: 1) { totalCount edges { node { id } } } }');
    const ten = measure('{ tasks(first: 10) { totalCount edges { node { id } } } }');
    // tasks: 1 + 10 (SQL); totalCount: 1 + 10; edges and node and id: 3 per item.
    expect(one.cost).toBe(11 + 11 + 3);
    expect(ten.cost).toBe(11 + 11 + 30);
    expect(measure('query($n: Int) { tasks(first: $n) { edges { node { id } } } }', { n: 10 }).cost).toBe(11 + 30);
    expect(measure('query($n: Int = 5) { tasks(first: $n) { edges { node { id } } } }').cost).toBe(11 + 15);
    expect(measure('{ tasks { edges { node { id } } } }').cost).toBe(11 + 60);
    expect(measure('query($n: Int) { tasks(first: $n) { edges { node { id } } } }', { n: 1e9 }).cost).toBe(11 + 300);
  });

  it('gives a fragment the same measure inline and spread, and counts every spread', () => {
    const inline = measure('{ tasks { edges { node { id owner { email } } } } }');
    const spread = measure('{ tasks { edges { node { ...T } } } } fragment T on Task { id owner { email } }');
    expect(spread).toEqual(inline);
    const twice = measure('{ a: tasks { edges { node { ...T } } } b: tasks { edges { node { ...T } } } } fragment T on Task { id }');
    expect(twice.aliases).toBe(2);
    expect(twice.cost).toBe(2 * measure('{ tasks { edges { node { id } } } }').cost);
  });

  it('measures fan-out without expanding it', () => {
    let fragments = 'fragment F0 on Query { __typename }';
    for (let i = 1; i <= 30; i++) fragments += ` fragment F${i} on Query { ${`...F${i - 1} `.repeat(10)}}`;
    // 10^30 copies of a field: expanding them would never finish.
    const { cost } = measure(`{ ...F30 } ${fragments}`);
    expect(cost / 1e30).toBeCloseTo(1, 10);
  });

  it('counts password checks and refreshes, and takes unknown fields, fragments and cycles as validation’s to refuse', () => {
    expect(measure('mutation { signIn(email: "a", password: "b") { token } }').passwordChecks).toBe(1);
    expect(measure('mutation { deleteAccount(password: "b") }').passwordChecks).toBe(1);
    expect(measure('mutation { refreshSession(refreshToken: "r") { token } }')).toMatchObject({ passwordChecks: 0, refreshes: 1 });
    expect(measure('{ nope { deeper { still } } ...Missing }').depth).toBe(3);
    expect(measure('{ ...A } fragment A on Query { ...B } fragment B on Query { ...A health { status } }').cost).toBe(22);
  });
});

describe('the trusted documents manifest', () => {
  const text = 'query Me { me { id } }';
  const hash = createHash('sha256').update(text).digest('hex');
  const trusted = new TrustedDocuments({ [`sha256:${hash}`]: text });

  it('refuses a manifest whose key is not the sha256 of its document', () => {
    expect(() => new TrustedDocuments({ [`sha256:${'0'.repeat(64)}`]: text })).toThrow(/sha256/);
  });

  it('resolves a hash, with or without its prefix, to the document, and keeps the other parameters', () => {
    expect(trusted.resolve({ documentId: `sha256:${hash}`, variables: { a: 1 } })).toEqual({ query: text, variables: { a: 1 } });
    expect(trusted.resolve({ extensions: { persistedQuery: { version: 1, sha256Hash: hash }, other: true } })).toEqual({
      query: text,
      extensions: { other: true },
    });
    expect(trusted.resolve({ query: text })).toEqual({ query: text });
  });

  it('refuses anything else with PERSISTED_QUERY_NOT_FOUND', () => {
    for (const params of [
      {},
      { query: '{ me { id } }' },
      { documentId: 42 },
      { documentId: hash, query: '{ health { status } }' },
      { documentId: ['a'] },
    ]) {
      expect(() => trusted.resolve(params)).toThrow(
        expect.objectContaining({ extensions: expect.objectContaining({ code: 'PERSISTED_QUERY_NOT_FOUND' }) }),
      );
    }
  });
});

describe('the address the sign-in limit counts by', () => {
  it('is an IPv4 address as it is, however written, and an IPv6 address by its /64', () => {
    expect(addressKey('203.0.113.9')).toBe('203.0.113.9');
    expect(addressKey('::ffff:203.0.113.9')).toBe('203.0.113.9');
    expect(addressKey('2001:db8:1:2:3:4:5:6')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:0db8:0001:0002::7')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(addressKey('2001:db8::2')).toBe(addressKey('2001:db8::1'));
    expect(addressKey('::1')).toBe('0:0:0:0::/64');
    expect(addressKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(addressKey('not an address')).toBe('unknown');
  });
});
