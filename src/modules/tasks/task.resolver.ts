import { ref } from '@mikro-orm/core';
import { Arg, Args, Ctx, FieldResolver, ID, Int, Mutation, Query, Resolver, Root, UseMiddleware } from 'type-graphql';
import type { Context } from '../../graphql/context.js';
import { UnitOfWork } from '../../graphql/unit-of-work.js';
import { requireUserId } from '../../graphql/viewer.js';
import { User } from '../users/user.entity.js';
import { Task } from './task.entity.js';
import { TaskService } from './task.service.js';
import { CreateTaskInput, TaskConnection, TasksArgs, UpdateTaskArgs } from './task.types.js';

const tasksOf = (context: Context) => new TaskService(context.em, requireUserId(context));

@Resolver(() => Task)
export class TaskResolver {
  @Query(() => Task, { nullable: true, description: 'Null when it does not exist or belongs to someone else' })
  task(@Arg('id', () => ID) id: string, @Ctx() context: Context): Promise<Task | null> {
    return tasksOf(context).find(id);
  }

  @Query(() => TaskConnection)
  tasks(@Args(() => TasksArgs) args: TasksArgs, @Ctx() context: Context): Promise<TaskConnection> {
    return tasksOf(context).list(args);
  }

  @Mutation(() => Task)
  @UseMiddleware(UnitOfWork)
  async createTask(@Arg('input', () => CreateTaskInput) input: CreateTaskInput, @Ctx() context: Context): Promise<Task> {
    return tasksOf(context).create(input);
  }

  @Mutation(() => Task)
  @UseMiddleware(UnitOfWork)
  updateTask(@Args(() => UpdateTaskArgs) { id, input }: UpdateTaskArgs, @Ctx() context: Context): Promise<Task> {
    return tasksOf(context).update(id, input);
  }

  @Mutation(() => Task)
  @UseMiddleware(UnitOfWork)
  completeTask(@Arg('id', () => ID) id: string, @Ctx() context: Context): Promise<Task> {
    return tasksOf(context).complete(id);
  }

  @Mutation(() => ID, { description: 'The id that was deleted' })
  @UseMiddleware(UnitOfWork)
  deleteTask(@Arg('id', () => ID) id: string, @Ctx() context: Context): Promise<string> {
    return tasksOf(context).delete(id);
  }

  /** Batched per request by MikroORM's dataloader: one query for a whole page. */
  @FieldResolver(() => User)
  async owner(@Root() task: Task): Promise<User> {
    return (await ref(task.owner).load({ dataloader: true }))!;
  }
}

@Resolver(() => TaskConnection)
export class TaskConnectionResolver {
  @FieldResolver(() => Int, { description: 'Every match of the filter, counted only when asked for' })
  totalCount(@Root() connection: TaskConnection): Promise<number> {
    return connection.countTotal();
  }
}
