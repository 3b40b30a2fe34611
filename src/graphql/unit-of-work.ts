import type { MiddlewareFn } from 'type-graphql';
import type { Context } from './context.js';

/**
 * A mutation's writes commit together or not at all: the resolver runs on a transactional fork of the request's
 * EntityManager, flushed and committed when it returns, rolled back when it throws.
 */
export const UnitOfWork: MiddlewareFn<Context> = async ({ context }, next) => {
  const requestEm = context.em;
  try {
    return await requestEm.transactional(async (em) => {
      context.em = em;
      return next();
    });
  } finally {
    context.em = requestEm;
  }
};
