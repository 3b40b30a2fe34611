import { Ctx, Query, Resolver } from 'type-graphql';
import type { Context } from '../graphql/context.js';
import { Cost } from '../guards/cost.js';
import { Health } from './health.types.js';

@Resolver()
export class HealthResolver {
  @Cost({ sql: 2 })
  @Query(() => Health, { description: 'Public; answers within 2 s even when the database hangs' })
  health(@Ctx() { services }: Context): Promise<Health> {
    return services.health.check();
  }
}
