import { Task } from './modules/tasks/index.js';
import { User } from './modules/users/index.js';

/** Every entity MikroORM maps: the composition root names the features, the ORM's wiring (db/) does not. */
export const ENTITIES = [User, Task];
