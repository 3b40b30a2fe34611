import { Check, Entity, Property } from '@mikro-orm/decorators/legacy';
import { Field, ObjectType } from 'type-graphql';
import { BaseEntity } from '../../db/base.entity.js';

@ObjectType({ simpleResolvers: true, description: 'A person who signs in; sees and changes only their own tasks' })
@Entity({ tableName: 'users' })
@Check({ name: 'users_email_normalised', expression: 'email = lower(btrim(email))' })
export class User extends BaseEntity<'name'> {
  /** Stored trimmed and lower-case, so the unique index compares emails case-insensitively. */
  @Field({ description: 'Trimmed and lower-case, unique (compared case-insensitively); at most 320 characters' })
  @Property({ type: 'string', length: 320, unique: 'users_email_unique' })
  email!: string;

  @Field(() => String, { nullable: true, description: 'How the user wants to be called, at most 200 characters; null when not given' })
  @Property({ type: 'string', length: 200, nullable: true })
  name: string | null = null;

  /** A bcrypt hash; no GraphQL field ever returns it. */
  @Property({ type: 'string', length: 100, hidden: true, lazy: false })
  passwordHash!: string;
}
