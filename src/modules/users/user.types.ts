import { ArgsType, Field, InputType, ObjectType } from 'type-graphql';
import { User } from './user.entity.js';

@InputType()
export class SignUpInput {
  @Field() email!: string;
  @Field() password!: string;
  @Field(() => String, { nullable: true }) name?: string | null;
}

@ObjectType({ simpleResolvers: true })
export class AuthPayload {
  @Field() token!: string;
  @Field() expiresAt!: Date;
  @Field(() => User) user!: User;
}

@ArgsType()
export class SignInArgs {
  @Field() email!: string;
  @Field() password!: string;
}
