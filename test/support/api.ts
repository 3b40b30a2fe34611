import { randomBytes } from 'node:crypto';
import { ClientError, GraphQLClient } from 'graphql-request';

export interface ApiError {
  message: string;
  path?: (string | number)[];
  extensions?: { code?: string; field?: string; [key: string]: unknown };
}

export interface ApiResult<T> {
  status: number;
  data?: T | null;
  errors?: ApiError[];
}

export interface Api {
  request<T = Record<string, unknown>>(document: string, variables?: Record<string, unknown>): Promise<ApiResult<T>>;
  /** The data of an operation that must succeed. */
  ok<T = Record<string, unknown>>(document: string, variables?: Record<string, unknown>): Promise<T>;
  /** The code of the one error an operation must fail with. */
  code(document: string, variables?: Record<string, unknown>): Promise<string | undefined>;
}

/** A real GraphQL client (graphql-request) on the running server, as a frontend would use it. */
export function api(serverUrl: string, token?: string): Api {
  const client = new GraphQLClient(`${serverUrl}/graphql`, {
    headers: token ? { authorization: `Bearer ${token}` } : {},
    errorPolicy: 'all',
  });
  const request = async <T>(document: string, variables?: Record<string, unknown>): Promise<ApiResult<T>> => {
    try {
      const { status, data, errors } = await client.rawRequest<T>(document, variables);
      return { status, data, errors: errors as ApiError[] | undefined };
    } catch (error) {
      if (!(error instanceof ClientError)) throw error;
      return { status: error.response.status, data: error.response.data as T, errors: error.response.errors as ApiError[] | undefined };
    }
  };
  return {
    request,
    ok: async <T>(document: string, variables?: Record<string, unknown>) => {
      const result = await request<T>(document, variables);
      if (result.errors?.length) throw new Error(`unexpected errors: ${JSON.stringify(result.errors)}`);
      return result.data as T;
    },
    code: async (document, variables) => {
      const result = await request(document, variables);
      if (result.errors?.length !== 1) throw new Error(`expected one error, got ${JSON.stringify(result)}`);
      return result.errors[0]!.extensions?.code;
    },
  };
}

export const uniqueEmail = (prefix = 'user') => `${prefix}-${randomBytes(5).toString('hex')}@example.com`;

export const SIGN_UP = /* GraphQL */ `
  mutation SignUp($input: SignUpInput!) {
    signUp(input: $input) {
      token
      expiresAt
      refreshToken
      refreshExpiresAt
      user {
        id
        email
        name
        createdAt
        updatedAt
      }
    }
  }
`;

export interface SignedUp {
  token: string;
  expiresAt: string;
  refreshToken: string;
  refreshExpiresAt: string;
  user: { id: string; email: string; name: string | null };
}

/** A new account and a client signed in as it. */
export async function signUpUser(serverUrl: string, email = uniqueEmail(), password = 'correct horse battery') {
  const { signUp } = await api(serverUrl).ok<{ signUp: SignedUp }>(SIGN_UP, { input: { email, password } });
  return { ...signUp, password, api: api(serverUrl, signUp.token) };
}

/** The session an access token belongs to (its `sid` claim), read without checking the signature. */
export function sessionIdOf(token: string): string {
  return (JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { sid: string }).sid;
}
