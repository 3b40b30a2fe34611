// What the users feature offers the rest of the server; other folders import it through this file only.
import type { AuthService } from './auth.service.js';
import type { SessionGate } from './session.gate.js';

export { AuthService } from './auth.service.js';
export { hashPassword } from './password.js';
export { SessionGate } from './session.gate.js';
export { TokenService } from './tokens.js';
export { User } from './user.entity.js';
export { UserResolver } from './user.resolver.js';

declare module '../../graphql/context.js' {
  interface Services {
    auth: AuthService;
    sessions: SessionGate;
  }
}
