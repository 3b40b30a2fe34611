import { Arg, Args, Ctx, Mutation, Query, Resolver } from 'type-graphql';
import type { Context } from '../../graphql/context.js';
import { invalidToken } from '../../graphql/viewer.js';
import { User } from './user.entity.js';
import { AuthPayload, SignInArgs, SignUpInput } from './user.types.js';

@Resolver()
export class UserResolver {
  @Mutation(() => AuthPayload)
  signUp(@Arg('input', () => SignUpInput) input: SignUpInput, @Ctx() { em, services }: Context): Promise<AuthPayload> {
    return services.auth.signUp(em, input);
  }

  @Mutation(() => AuthPayload)
  signIn(@Args(() => SignInArgs) { email, password }: SignInArgs, @Ctx() { em, services }: Context): Promise<AuthPayload> {
    return services.auth.signIn(em, email, password);
  }

  @Query(() => User, { nullable: true, description: 'Null when not signed in' })
  async me(@Ctx() { em, viewer }: Context): Promise<User | null> {
    if (viewer.kind === 'anonymous') return null;
    if (viewer.kind === 'invalid') throw invalidToken();
    return em.findOne(User, viewer.userId);
  }
}
