import { randomUUID } from 'node:crypto';
import { OptionalProps } from '@mikro-orm/core';
import { PrimaryKey, Property } from '@mikro-orm/decorators/legacy';
import { Field, ID, ObjectType } from 'type-graphql';

/** UUID identity and timestamps, maintained by the ORM, shared by every entity. */
@ObjectType({ simpleResolvers: true })
export abstract class BaseEntity<Optional extends string = never> {
  [OptionalProps]?: 'id' | 'createdAt' | 'updatedAt' | Optional;

  @Field(() => ID, { description: 'A UUID' })
  @PrimaryKey({ type: 'uuid' })
  id: string = randomUUID();

  @Field({ description: 'When it was created (UTC, to the millisecond)' })
  @Property({ type: 'datetime', length: 3, onCreate: () => new Date() })
  createdAt: Date = new Date();

  /** A new row's is its `createdAt`, to the millisecond (two clock readings can straddle one). */
  @Field({ description: 'When it last changed (UTC, to the millisecond); its createdAt until then' })
  @Property({ type: 'datetime', length: 3, onCreate: (entity: { createdAt: Date }) => entity.createdAt, onUpdate: () => new Date() })
  updatedAt: Date = this.createdAt;
}
