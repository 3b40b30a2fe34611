import type { MiddlewareFn } from 'type-graphql';
import { inTransaction } from '../db/transaction.js';
import type { Context } from './context.js';

/**
 * A mutation's writes commit together or not at all: the resolver runs on a transactional fork of the request's
 * EntityManager, committed when it returns, rolled back when it throws, and run again when the connection broke
 * before COMMIT (see inTransaction).
 */
export const UnitOfWork: MiddlewareFn<Context> = async ({ context }, next) => {
  const requestEm = context.em;
  try {
    return await inTransaction(requestEm, (em) => {
      context.em = em;
      return next();
    });
  } finally {
    context.em = requestEm;
  }
};
