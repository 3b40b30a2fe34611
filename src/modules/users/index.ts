// What the users feature offers the rest of the server; other folders import it through this file only.
export { AuthService } from './auth.service.js';
export { hashPassword } from './password.js';
export { TokenService } from './tokens.js';
export { User } from './user.entity.js';
export { UserResolver } from './user.resolver.js';
