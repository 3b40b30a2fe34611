import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type Page } from 'playwright-core';
import { uniqueEmail } from '../support/api.js';
import { serverForTests } from '../support/server.js';

const CHROMIUM = '/usr/bin/chromium';

/** What the page's own JavaScript gets back from the API: status and parsed body, or the error fetch threw. */
interface Outcome<T> {
  status?: number;
  body?: { data?: T | null; errors?: unknown[] };
  thrown?: string;
}

/** A frontend served from a page server of its own; the API lives on another origin, so CORS decides. */
describe('a browser on another origin', () => {
  let pages: Server;
  let browser: Browser;
  let allowedOrigin: string;
  let refusedOrigin: string;
  // Filled in once the page server has a port; serverForTests reads it in its own beforeAll, which runs after this one.
  const env: Record<string, string> = {};

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run \`apt-get install chromium\` (Debian's Chromium) first`);
    pages = createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(`<!doctype html><title>client at ${req.headers.host}</title><p>A frontend of the task API.</p>`);
    });
    await new Promise<void>((resolve) => pages.listen(0, '127.0.0.1', resolve));
    const { port } = pages.address() as AddressInfo;
    allowedOrigin = `http://127.0.0.1:${port}`;
    refusedOrigin = `http://localhost:${port}`; // another origin to the browser, same server
    env.CORS_ORIGINS = allowedOrigin;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    });
  });

  const t = serverForTests({ env });

  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => (pages ? pages.close(resolve) : resolve(undefined)));
  });

  const apiUrl = () => `${t.server.url}/graphql`; // http://127.0.0.1:<apiPort>: another port, so another origin

  const open = async (origin: string): Promise<Page> => {
    const page = await browser.newPage();
    await page.goto(`${origin}/`);
    return page;
  };

  /** fetch from inside the page, as the frontend's code would: JSON body, bearer token when signed in. */
  const gqlFrom = <T = unknown>(page: Page, query: string, variables: Record<string, unknown> = {}, token?: string) =>
    page.evaluate(
      async ({ url, query, variables, token }): Promise<Outcome<T>> => {
        const headers: Record<string, string> = { 'content-type': 'application/json' };
        if (token) headers.authorization = `Bearer ${token}`;
        try {
          const res = await fetch(url, { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
          return { status: res.status, body: (await res.json()) as Outcome<T>['body'] };
        } catch (error) {
          return { thrown: String(error) };
        }
      },
      { url: apiUrl(), query, variables, token },
    );

  const SIGN_UP = `mutation($input: SignUpInput!) { signUp(input: $input) { token } }`;
  const CREATE_TASK = `mutation($input: CreateTaskInput!) { createTask(input: $input) { title } }`;
  const PASSWORD = 'correct horse battery';

  const preflight = (origin: string) =>
    fetch(apiUrl(), {
      method: 'OPTIONS',
      headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,authorization' },
    });

  it('lets a page on an allowed origin sign up, create tasks with a bearer token, and list them', async () => {
    const page = await open(allowedOrigin);
    try {
      const signedUp = await gqlFrom<{ signUp: { token: string } }>(page, SIGN_UP, {
        input: { email: uniqueEmail('browser'), password: PASSWORD },
      });
      expect(signedUp).toMatchObject({ status: 200, body: { data: { signUp: { token: expect.any(String) } } } });
      const token = signedUp.body!.data!.signUp.token;

      for (const title of ['Buy milk', 'Walk the dog']) {
        const created = await gqlFrom(page, CREATE_TASK, { input: { title } }, token);
        expect(created).toEqual({ status: 200, body: { data: { createTask: { title } } } });
      }

      const listed = await gqlFrom<{ tasks: { edges: { node: { title: string } }[] } }>(
        page,
        `{ tasks { edges { node { title } } } }`,
        {},
        token,
      );
      expect(listed).toMatchObject({ status: 200, body: { data: { tasks: { edges: expect.any(Array) } } } });
      expect(listed.body!.data!.tasks.edges.map((edge) => edge.node.title).sort()).toEqual(['Buy milk', 'Walk the dog']);
    } finally {
      await page.close();
    }
  });

  it('makes the browser refuse the same call from an origin that is not listed, before the request is sent', async () => {
    const page = await open(refusedOrigin);
    const email = uniqueEmail('refused');
    try {
      expect(await gqlFrom(page, SIGN_UP, { input: { email, password: PASSWORD } })).toEqual({ thrown: 'TypeError: Failed to fetch' });
    } finally {
      await page.close();
    }
    // The preflight failed, so the mutation never ran: the address is still free.
    const { body } = await t.server.gql(SIGN_UP, { input: { email, password: PASSWORD } });
    expect(body.errors).toBeUndefined();
  });

  it('answers the preflight of an allowed origin with 204 and the headers it asked for', async () => {
    const res = await preflight(allowedOrigin);
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe(allowedOrigin);
    expect(res.headers.get('access-control-allow-headers')?.split(',')).toEqual(expect.arrayContaining(['content-type', 'authorization']));
    expect(res.headers.get('access-control-allow-methods')).toContain('POST');
  });

  it('gives the preflight of any other origin no access-control-allow-origin', async () => {
    for (const origin of [refusedOrigin, 'https://evil.example.com']) {
      const res = await preflight(origin);
      expect(res.headers.get('access-control-allow-origin')).toBeNull();
    }
  });

  it('sends helmet security headers on /graphql and on /health/live', async () => {
    const graphql = await fetch(apiUrl(), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ __typename }' }),
    });
    const live = await fetch(`${t.server.url}/health/live`);
    for (const res of [graphql, live]) {
      expect(res.status).toBe(200);
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('x-powered-by')).toBeNull();
    }
  });

  it('still serves the Apollo Sandbox landing page outside production', async () => {
    const res = await fetch(apiUrl(), { headers: { accept: 'text/html' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await res.text()).toMatch(/<!DOCTYPE html>/i);
  });
});
