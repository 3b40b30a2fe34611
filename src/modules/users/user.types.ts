import { ArgsType, Field, InputType, ObjectType } from 'type-graphql';
import { User } from './user.entity.js';

@InputType({ description: 'A new account' })
export class SignUpInput {
  @Field({ description: 'An email address; trimmed and compared case-insensitively. Taken already: CONFLICT' }) email!: string;
  @Field({ description: '8 to 128 characters; only a hash of it is stored' }) password!: string;
  @Field(() => String, { nullable: true, description: 'At most 200 characters' }) name?: string | null;
}

@ObjectType({ simpleResolvers: true, description: 'A signed-in session' })
export class AuthPayload {
  @Field({ description: 'The access token (a JWT): send it as `Authorization: Bearer <token>`, or in connection_init over WebSocket' })
  token!: string;
  @Field({ description: 'When the token expires (UTC); sign in again after it' }) expiresAt!: Date;
  @Field(() => User, { description: 'The signed-in user' }) user!: User;
}

@ArgsType()
export class SignInArgs {
  @Field({ description: 'The email signed up with, in any case' }) email!: string;
  @Field({ description: 'The password; a wrong email or password is UNAUTHENTICATED, the same for both' }) password!: string;
}
