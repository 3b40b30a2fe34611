import { Field, Float, Int, ObjectType, registerEnumType } from 'type-graphql';

export enum HealthStatus {
  OK = 'OK',
  DEGRADED = 'DEGRADED',
  DOWN = 'DOWN',
}
registerEnumType(HealthStatus, {
  name: 'HealthStatus',
  description: 'How the server is',
  valuesConfig: {
    OK: { description: 'All good' },
    DEGRADED: { description: 'The database is up but migrations are pending' },
    DOWN: { description: 'The database cannot be reached' },
  },
});

@ObjectType({ simpleResolvers: true, description: 'The connection pool of this instance' })
export class PoolStats {
  @Field(() => Int, { description: 'Connections it may open (DB_POOL_MAX)' }) max!: number;
  @Field(() => Int, { description: 'Connections open now' }) total!: number;
  @Field(() => Int, { description: 'Open and not in use' }) idle!: number;
  @Field(() => Int, { description: 'Requests waiting for a connection' }) waiting!: number;
}

@ObjectType({ simpleResolvers: true, description: 'The database as this instance sees it' })
export class DatabaseHealth {
  @Field({ description: 'The probe query answered' }) connected!: boolean;
  @Field(() => Float, { nullable: true, description: 'Round trip of the probe query' }) latencyMs!: number | null;
  @Field(() => String, { nullable: true, description: 'PostgreSQL’s version; null when not connected' }) serverVersion!: string | null;
  @Field(() => String, { nullable: true, description: 'Short reason when not connected; never a credential' })
  error!: string | null;
  @Field(() => PoolStats, { description: 'The connection pool' }) pool!: PoolStats;
}

@ObjectType({ simpleResolvers: true, description: 'The schema migrations' })
export class MigrationHealth {
  @Field({ description: 'Every migration this version ships is applied' }) upToDate!: boolean;
  @Field(() => Int, { description: 'How many are applied' }) applied!: number;
  @Field(() => [String], { description: 'Names of migrations not yet applied' }) pending!: string[];
  @Field(() => String, { nullable: true, description: 'Name of the newest applied migration' }) latest!: string | null;
}

@ObjectType({ simpleResolvers: true, description: 'The server’s health, as /health/ready sees it' })
export class Health {
  @Field(() => HealthStatus, { description: 'OK: all good; DEGRADED: database up but migrations pending; DOWN: database unreachable' })
  status!: HealthStatus;
  @Field({ description: 'The server’s version (package.json)' }) version!: string;
  @Field(() => Float, { description: 'Seconds since the process started' }) uptimeSeconds!: number;
  @Field({ description: 'When this answer was made' }) checkedAt!: Date;
  @Field(() => DatabaseHealth, { description: 'The database' }) database!: DatabaseHealth;
  @Field(() => MigrationHealth, { description: 'The migrations' }) migrations!: MigrationHealth;
}
