import { numbered } from '../../src/db/driver/prepared.js';

describe('numbered placeholders', () => {
  it("numbers MikroORM's ? outside quoted literals only", () => {
    expect(numbered(`select ?::uuid, 'a?b', 'it''s ?', ? escape '\\' limit ?`)).toBe(
      `select $1::uuid, 'a?b', 'it''s ?', $2 escape '\\' limit $3`,
    );
  });
});
