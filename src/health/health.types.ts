import { Field, Float, Int, ObjectType, registerEnumType } from 'type-graphql';

export enum HealthStatus {
  OK = 'OK',
  DEGRADED = 'DEGRADED',
  DOWN = 'DOWN',
}
registerEnumType(HealthStatus, { name: 'HealthStatus' });

@ObjectType({ simpleResolvers: true })
export class PoolStats {
  @Field(() => Int) max!: number;
  @Field(() => Int) total!: number;
  @Field(() => Int) idle!: number;
  @Field(() => Int) waiting!: number;
}

@ObjectType({ simpleResolvers: true })
export class DatabaseHealth {
  @Field() connected!: boolean;
  @Field(() => Float, { nullable: true, description: 'Round trip of the probe query' }) latencyMs!: number | null;
  @Field(() => String, { nullable: true }) serverVersion!: string | null;
  @Field(() => String, { nullable: true, description: 'Short reason when not connected; never a credential' })
  error!: string | null;
  @Field(() => PoolStats) pool!: PoolStats;
}

@ObjectType({ simpleResolvers: true })
export class MigrationHealth {
  @Field() upToDate!: boolean;
  @Field(() => Int) applied!: number;
  @Field(() => [String], { description: 'Names of migrations not yet applied' }) pending!: string[];
  @Field(() => String, { nullable: true, description: 'Name of the newest applied migration' }) latest!: string | null;
}

@ObjectType({ simpleResolvers: true })
export class Health {
  @Field(() => HealthStatus) status!: HealthStatus;
  @Field() version!: string;
  @Field(() => Float) uptimeSeconds!: number;
  @Field() checkedAt!: Date;
  @Field(() => DatabaseHealth) database!: DatabaseHealth;
  @Field(() => MigrationHealth) migrations!: MigrationHealth;
}
