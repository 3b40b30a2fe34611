import pg from 'pg';
import { connectionSettings } from '../../src/db/connection-settings.js';
import { openOrm } from '../support/orm.js';
import { CERTIFIED_IP, TestPostgres, UNCERTIFIED_IP } from '../support/postgres.js';

/** Connects as the server does (`connectionSettings` into a `pg.Client`) and says whether the session is TLS. */
async function sessionIsTls(url: string): Promise<boolean> {
  const client = new pg.Client({ ...connectionSettings(url), connectionTimeoutMillis: 5000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    const { rows } = await client.query<{ ssl: boolean }>('select ssl from pg_stat_ssl where pid = pg_backend_pid()');
    return rows[0]!.ssl;
  } finally {
    await client.end().catch(() => undefined);
  }
}

describe('TLS to a PostgreSQL that accepts nothing else', () => {
  let server: TestPostgres;
  const url = (host: string, params: Record<string, string>) => server.urlFor('postgres', { host, params });
  const trusted = (host: string, sslmode: string) => url(host, { sslmode, sslrootcert: server.caFile });

  beforeAll(async () => {
    server = await TestPostgres.start({ tls: true });
  });
  afterAll(() => {
    server?.destroy();
  });

  it('refuses a plain connection', async () => {
    await expect(sessionIsTls(url(CERTIFIED_IP, { sslmode: 'disable' }))).rejects.toMatchObject({
      code: '28000',
      message: expect.stringMatching(/no pg_hba\.conf entry .* no encryption/),
    });
  });

  it('connects by IP address with verify-full, checking the certificate against the address', async () => {
    await expect(sessionIsTls(trusted(CERTIFIED_IP, 'verify-full'))).resolves.toBe(true);
  });

  it('connects by name with verify-full', async () => {
    await expect(sessionIsTls(trusted('localhost', 'verify-full'))).resolves.toBe(true);
  });

  it('checks the host with require too, unlike libpq', async () => {
    await expect(sessionIsTls(trusted(CERTIFIED_IP, 'require'))).resolves.toBe(true);
    await expect(sessionIsTls(trusted(UNCERTIFIED_IP, 'require'))).rejects.toMatchObject({ code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
  });

  it('fails verify-full on an address the certificate does not name, where verify-ca connects', async () => {
    await expect(sessionIsTls(trusted(UNCERTIFIED_IP, 'verify-full'))).rejects.toMatchObject({
      code: 'ERR_TLS_CERT_ALTNAME_INVALID',
      message: expect.stringContaining(`IP: ${UNCERTIFIED_IP} is not in the cert's list: ${CERTIFIED_IP}`),
    });
    await expect(sessionIsTls(trusted(UNCERTIFIED_IP, 'verify-ca'))).resolves.toBe(true);
  });

  it('fails every mode without sslrootcert, the CA being unknown', async () => {
    for (const sslmode of ['require', 'verify-ca', 'verify-full']) {
      await expect(sessionIsTls(url(CERTIFIED_IP, { sslmode }))).rejects.toMatchObject({ code: 'SELF_SIGNED_CERT_IN_CHAIN' });
    }
  });

  it('reaches the ORM: the server pool connects by IP address with verify-full', async () => {
    const orm = await openOrm(trusted(CERTIFIED_IP, 'verify-full'));
    try {
      const rows = await orm.em.getConnection().execute('select ssl from pg_stat_ssl where pid = pg_backend_pid()');
      expect(rows).toEqual([{ ssl: true }]);
    } finally {
      await orm.close();
    }
  });

  describe('once its certificate names the IP address only', () => {
    beforeAll(async () => {
      await server.reissue(`IP:${CERTIFIED_IP}`);
    });

    it('connects by that address with verify-full (pg alone would check the certificate against localhost)', async () => {
      await expect(sessionIsTls(trusted(CERTIFIED_IP, 'verify-full'))).resolves.toBe(true);
    });

    it('fails verify-full by a name the certificate does not hold, where verify-ca connects', async () => {
      await expect(sessionIsTls(trusted('localhost', 'verify-full'))).rejects.toMatchObject({
        code: 'ERR_TLS_CERT_ALTNAME_INVALID',
        // Without DNS names among its SANs, Node compares a name with the subject's CN.
        message: expect.stringContaining("Host: localhost. is not cert's CN: todo test server"),
      });
      await expect(sessionIsTls(trusted('localhost', 'verify-ca'))).resolves.toBe(true);
    });
  });
});
