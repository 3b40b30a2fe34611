import { Ctx, Query, Resolver } from 'type-graphql';
import type { Context } from '../graphql/context.js';
import { Health } from './health.types.js';

@Resolver()
export class HealthResolver {
  @Query(() => Health, { description: 'Public; answers within 2 s even when the database hangs' })
  health(@Ctx() { services }: Context): Promise<Health> {
    return services.health.check();
  }
}
