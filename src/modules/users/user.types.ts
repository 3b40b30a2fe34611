import { ArgsType, Field, ID, InputType, ObjectType, registerEnumType } from 'type-graphql';
import { User } from './user.entity.js';

@InputType({ description: 'A new account' })
export class SignUpInput {
  @Field({ description: 'An email address; trimmed and compared case-insensitively. Taken already: CONFLICT' }) email!: string;
  @Field({ description: '8 to 128 characters; only a hash of it is stored' }) password!: string;
  @Field(() => String, { nullable: true, description: 'At most 200 characters' }) name?: string | null;
}

@ObjectType({ simpleResolvers: true, description: 'A session’s tokens: a short-lived access token and a single-use refresh token' })
export class AuthPayload {
  @Field({
    description:
      'The access token (a JWT), short-lived (JWT_EXPIRES_IN, 15 minutes by default): send it as `Authorization: Bearer <token>`, or in connection_init over WebSocket',
  })
  token!: string;
  @Field({ description: 'When the access token expires (UTC); refresh before it' }) expiresAt!: Date;
  @Field({
    description:
      'Opaque and single use: refreshSession spends it and answers a new pair. Keep it secret; presenting it again after it was spent ends the session',
  })
  refreshToken!: string;
  @Field({ description: 'When the refresh token expires (UTC), unless spent first; each refresh moves it (REFRESH_TOKEN_TTL)' })
  refreshExpiresAt!: Date;
  @Field(() => User, { description: 'The signed-in user' }) user!: User;
}

/** A session as `sessions` lists it. */
@ObjectType('Session', { simpleResolvers: true, description: 'A signed-in session: one device or client, from sign-in until it ends' })
export class SessionView {
  @Field(() => ID, { description: 'The session’s id (a UUID)' }) id!: string;
  @Field({ description: 'When it was signed in (UTC)' }) createdAt!: Date;
  @Field({
    description: 'When it was last used (UTC): signed in, refreshed, or first seen by an instance in a while (at most a minute off)',
  })
  lastUsedAt!: Date;
  @Field(() => String, {
    nullable: true,
    description: 'The User-Agent it was signed in with, at most 200 characters; null when none was sent',
  })
  userAgent!: string | null;
  @Field({ description: 'Whether it is the session of the token making this request' }) current!: boolean;
}

export enum SignOutScope {
  THIS = 'THIS',
  OTHERS = 'OTHERS',
  ALL = 'ALL',
}

registerEnumType(SignOutScope, {
  name: 'SignOutScope',
  description: 'Which of the caller’s sessions signOut ends',
  valuesConfig: {
    THIS: { description: 'The session of the token making the request' },
    OTHERS: { description: 'Every session of the user but this one' },
    ALL: { description: 'Every session of the user, this one included' },
  },
});

@ArgsType()
export class SignInArgs {
  @Field({ description: 'The email signed up with, in any case' }) email!: string;
  @Field({ description: 'The password; a wrong email or password is UNAUTHENTICATED, the same for both' }) password!: string;
}

@ArgsType()
export class ChangePasswordArgs {
  @Field({ description: 'The password now; a wrong one is UNAUTHENTICATED' }) currentPassword!: string;
  @Field({ description: 'The new password, 8 to 128 characters (else BAD_USER_INPUT with field newPassword)' }) newPassword!: string;
}
