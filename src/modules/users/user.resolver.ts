import { Arg, Args, Ctx, Mutation, Query, Resolver } from 'type-graphql';
import type { Context } from '../../graphql/context.js';
import { Cost } from '../../guards/cost.js';
import { requireUser } from '../../graphql/viewer.js';
import { User } from './user.entity.js';
import { AuthPayload, ChangePasswordArgs, SessionView, SignInArgs, SignOutScope, SignUpInput } from './user.types.js';

@Resolver()
export class UserResolver {
  @Cost({ hash: 1, sql: 7, attempt: 'password' })
  @Mutation(() => AuthPayload, {
    description:
      'Creates an account and signs in: a new session. Errors: BAD_USER_INPUT (with field), CONFLICT (email taken), RATE_LIMITED (per client address)',
  })
  signUp(
    @Arg('input', () => SignUpInput, { description: 'The new account' }) input: SignUpInput,
    @Ctx() { em, services, userAgent }: Context,
  ): Promise<AuthPayload> {
    return services.auth.signUp(em, input, { userAgent });
  }

  @Cost({ hash: 1, sql: 7, attempt: 'password' })
  @Mutation(() => AuthPayload, {
    description:
      'Signs in: a new session (past SESSIONS_PER_USER, the least recently used one ends). Errors: UNAUTHENTICATED (a wrong email or password, alike), RATE_LIMITED (per client address)',
  })
  signIn(@Args(() => SignInArgs) { email, password }: SignInArgs, @Ctx() { em, services, userAgent }: Context): Promise<AuthPayload> {
    return services.auth.signIn(em, email, password, { userAgent });
  }

  @Cost({ sql: 6, attempt: 'refresh' })
  @Mutation(() => AuthPayload, {
    description:
      'Spends a refresh token and answers a new pair for its session; needs no access token. A spent token presented again ends its session (theft detection). Errors: UNAUTHENTICATED (a bad, spent, expired or malformed refresh token, or a session that has ended), RATE_LIMITED (per client address)',
  })
  refreshSession(
    @Arg('refreshToken', { description: 'The refreshToken of the last pair this session was given' }) refreshToken: string,
    @Ctx() { em, services }: Context,
  ): Promise<AuthPayload> {
    return services.auth.refresh(em, refreshToken);
  }

  @Cost({ sql: 3 })
  @Mutation(() => Boolean, {
    description:
      'Ends sessions: their access tokens are refused on every instance within 2 seconds, and their subscriptions end with UNAUTHENTICATED. Answers true. Errors: UNAUTHENTICATED',
  })
  signOut(
    @Arg('scope', () => SignOutScope, {
      nullable: true,
      defaultValue: SignOutScope.THIS,
      description: 'Which sessions end; this one by default (and when null)',
    })
    scope: SignOutScope | null,
    @Ctx() context: Context,
  ): Promise<boolean> {
    return context.services.auth.signOut(context.em, requireUser(context), scope ?? SignOutScope.THIS);
  }

  @Cost({ hash: 2, sql: 8, attempt: 'password' })
  @Mutation(() => AuthPayload, {
    description:
      'Checks the current password like signIn, sets the new one, ends every other session and answers a new pair for this one. Errors: UNAUTHENTICATED (no session, or a wrong current password), BAD_USER_INPUT (newPassword), RATE_LIMITED (per client address and per account)',
  })
  changePassword(
    @Args(() => ChangePasswordArgs) { currentPassword, newPassword }: ChangePasswordArgs,
    @Ctx() context: Context,
  ): Promise<AuthPayload> {
    return context.services.auth.changePassword(context.em, requireUser(context), currentPassword, newPassword);
  }

  @Cost({ hash: 1, sql: 7, attempt: 'password' })
  @Mutation(() => Boolean, {
    description:
      'Checks the password like signIn, then erases the account and everything of it: tasks, change log, sessions. Its subscriptions end; the email can sign up again. Answers true. Errors: UNAUTHENTICATED (no session, or a wrong password), RATE_LIMITED (per client address and per account)',
  })
  deleteAccount(
    @Arg('password', { description: 'The account’s password; a wrong one is UNAUTHENTICATED' }) password: string,
    @Ctx() context: Context,
  ): Promise<boolean> {
    return context.services.auth.deleteAccount(context.em, requireUser(context), password);
  }

  @Cost({ sql: 1 })
  @Query(() => User, { nullable: true, description: 'The signed-in user; null when not signed in' })
  async me(@Ctx() context: Context): Promise<User | null> {
    if (context.viewer.kind === 'anonymous') return null;
    return context.em.findOne(User, requireUser(context).userId);
  }

  @Cost({ sql: 1 })
  @Query(() => [SessionView], { description: 'The caller’s live sessions, most recently used first. Errors: UNAUTHENTICATED' })
  sessions(@Ctx() context: Context): Promise<SessionView[]> {
    return context.services.auth.sessions(context.em, requireUser(context));
  }
}
