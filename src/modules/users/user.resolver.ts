import { Arg, Args, Ctx, Mutation, Query, Resolver } from 'type-graphql';
import type { Context } from '../../graphql/context.js';
import { Cost } from '../../guards/cost.js';
import { invalidToken } from '../../graphql/viewer.js';
import { User } from './user.entity.js';
import { AuthPayload, SignInArgs, SignUpInput } from './user.types.js';

@Resolver()
export class UserResolver {
  @Cost({ hash: 1, sql: 3 })
  @Mutation(() => AuthPayload, {
    description:
      'Creates an account and signs in. Errors: BAD_USER_INPUT (with field), CONFLICT (email taken), RATE_LIMITED (per client address)',
  })
  signUp(
    @Arg('input', () => SignUpInput, { description: 'The new account' }) input: SignUpInput,
    @Ctx() { em, services }: Context,
  ): Promise<AuthPayload> {
    return services.auth.signUp(em, input);
  }

  @Cost({ hash: 1, sql: 1 })
  @Mutation(() => AuthPayload, {
    description: 'Signs in. Errors: UNAUTHENTICATED (a wrong email or password, alike), RATE_LIMITED (per client address)',
  })
  signIn(@Args(() => SignInArgs) { email, password }: SignInArgs, @Ctx() { em, services }: Context): Promise<AuthPayload> {
    return services.auth.signIn(em, email, password);
  }

  @Cost({ sql: 1 })
  @Query(() => User, { nullable: true, description: 'Null when not signed in' })
  async me(@Ctx() { em, viewer }: Context): Promise<User | null> {
    if (viewer.kind === 'anonymous') return null;
    if (viewer.kind === 'invalid') throw invalidToken();
    return em.findOne(User, viewer.userId);
  }
}
