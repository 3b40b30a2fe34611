// What the tasks feature offers the rest of the server. Other folders import the feature through this file only
// (.dependency-cruiser.cjs holds them to it); the feature itself never imports the transports or the HTTP app.
import type { ChangeFeed } from './change-feed.js';

export { BufferLedger, type Holder } from './buffer-ledger.js';
export { ChangeFeed, type OpenOptions } from './change-feed.js';
export { TaskFeedResolver } from './task.feed.js';
export { Task } from './task.entity.js';
export { TaskPriority, TaskStatus } from './task.enums.js';
export { TaskConnectionResolver, TaskResolver } from './task.resolver.js';

declare module '../../graphql/context.js' {
  interface Services {
    feed: ChangeFeed;
  }
}
