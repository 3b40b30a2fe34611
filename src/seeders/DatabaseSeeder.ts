import type { EntityManager } from '@mikro-orm/core';
import { Seeder } from '@mikro-orm/seeder';
import { DEV_SEED_PASSWORD, loadConfig, type Config } from '../config/config.js';
import { createLogger } from '../observability/logger.js';
import { Task, TaskPriority, TaskStatus } from '../modules/tasks/index.js';
import { hashPassword, User } from '../modules/users/index.js';

export const SEED_EMAIL = 'test@example.com';

/** Fixed dates, so that a second run leaves exactly the same rows. */
export const SEED_TASKS = [
  {
    title: 'Renew passport',
    status: TaskStatus.PENDING,
    priority: TaskPriority.URGENT,
    tags: ['admin', 'travel'],
    dueDate: '2025-01-15T09:00:00Z',
  },
  {
    title: 'Plan the team offsite',
    status: TaskStatus.PENDING,
    priority: TaskPriority.MEDIUM,
    tags: ['work', 'planning'],
    dueDate: '2030-03-01T09:00:00Z',
  },
  {
    title: 'Write the quarterly report',
    status: TaskStatus.COMPLETED,
    priority: TaskPriority.HIGH,
    tags: ['work'],
    dueDate: '2025-03-31T17:00:00Z',
    completedAt: '2025-03-28T15:30:00Z',
  },
  {
    title: 'Fix the leaking tap',
    status: TaskStatus.COMPLETED,
    priority: TaskPriority.LOW,
    tags: ['home', 'diy'],
    completedAt: '2025-02-02T11:00:00Z',
  },
  {
    title: 'Book a dentist appointment',
    status: TaskStatus.COMPLETED,
    priority: TaskPriority.MEDIUM,
    tags: ['health', 'admin'],
    completedAt: '2025-01-20T08:45:00Z',
  },
] as const;

/** The seeded user's clear password: SEED_USER_PASSWORD, whose development default production refuses. */
export function seedPassword(config: Pick<Config, 'env' | 'seedUserPassword'>): string {
  const password = config.seedUserPassword;
  if (!password || (config.env === 'production' && password === DEV_SEED_PASSWORD)) {
    throw new Error('SEED_USER_PASSWORD must be set to a password of your own in production');
  }
  if (password.length < 8 || password.length > 128) throw new Error('SEED_USER_PASSWORD must be 8..128 characters');
  return password;
}

/** `test@example.com` and five tasks; idempotent: what exists is found and left as it is. */
export class DatabaseSeeder extends Seeder {
  async run(em: EntityManager): Promise<void> {
    const config = loadConfig();
    const log = createLogger(config).child({ component: 'seeder' });
    const password = seedPassword(config);

    let user = await em.findOne(User, { email: SEED_EMAIL });
    if (user) {
      log.info({ email: SEED_EMAIL }, 'found user');
    } else {
      user = em.create(User, { email: SEED_EMAIL, name: 'Test User', passwordHash: await hashPassword(password, config.bcryptRounds) });
      log.info({ email: SEED_EMAIL }, 'created user');
    }

    const existing = new Set((await em.find(Task, { owner: user }, { fields: ['title'] })).map((task) => task.title));
    let created = 0;
    for (const seed of SEED_TASKS) {
      if (existing.has(seed.title)) continue;
      em.create(Task, {
        title: seed.title,
        status: seed.status,
        priority: seed.priority,
        tags: [...seed.tags],
        dueDate: 'dueDate' in seed ? new Date(seed.dueDate) : null,
        completedAt: 'completedAt' in seed ? new Date(seed.completedAt) : null,
        owner: user,
      });
      created++;
    }
    await em.flush();
    log.info({ created, found: SEED_TASKS.length - created }, `tasks: ${created} created, ${SEED_TASKS.length - created} found`);
  }
}
