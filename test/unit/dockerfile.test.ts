import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DockerfileParser, type Instruction } from 'dockerfile-ast';
import { PROJECT_ROOT } from '../../src/config/app-version.js';

/**
 * No container engine runs on these machines: the runtime stage's content is tested as a production install
 * (production-install.test.ts), and this reads the Dockerfile, parsed as Docker parses it, for the rules that
 * matter at run time.
 */
const dockerfile = DockerfileParser.parse(readFileSync(join(PROJECT_ROOT, 'Dockerfile'), 'utf8'));
const froms = dockerfile.getFROMs();
const lastFrom = froms.at(-1)!;
const runtime = dockerfile.getInstructions().filter((instruction) => instruction.getRange().start.line > lastFrom.getRange().start.line);
const keyword = (instructions: Instruction[], name: string) => instructions.filter((instruction) => instruction.getKeyword() === name);

describe('the Dockerfile', () => {
  it('builds in one stage and runs on Node 24 in another', () => {
    expect(froms.length).toBeGreaterThanOrEqual(2);
    for (const from of froms) expect(`${from.getImageName()}:${from.getImageTag()}`).toMatch(/^node:24(\b|-)/);
    expect(froms[0]!.getBuildStage()).toBe('build');
    expect(keyword(runtime, 'COPY').map((copy) => copy.getTextContent())).toContain('COPY --from=build /app/dist ./dist');
  });

  it('installs only the production dependencies in the runtime stage', () => {
    const runs = keyword(runtime, 'RUN').map((run) => run.getArgumentsContent() ?? '');
    expect(runs.some((run) => /npm ci --omit=dev/.test(run))).toBe(true);
    expect(runs.some((run) => /npm (ci|install)(?!.*--omit=dev)/.test(run))).toBe(false);
    expect(keyword(runtime, 'COPY').map((copy) => copy.getArgumentsContent())).not.toContainEqual(expect.stringMatching(/^src\b|\s\.\s/));
  });

  it('runs as a non-root user', () => {
    const users = keyword(runtime, 'USER');
    expect(users.length).toBeGreaterThan(0);
    expect(users.at(-1)!.getArgumentsContent()).not.toMatch(/^(root|0)(:|$)/);
  });

  it('starts `node dist/src/main.js` in exec form, so that node is PID 1 and gets SIGTERM, never through npm', () => {
    const cmd = keyword(runtime, 'CMD').at(-1)!;
    expect(JSON.parse(cmd.getArgumentsContent()!)).toEqual(['node', 'dist/src/main.js']);
    expect(keyword(runtime, 'ENTRYPOINT')).toEqual([]);
    expect(readFileSync(join(PROJECT_ROOT, 'Dockerfile'), 'utf8')).not.toMatch(/npm start|npm run start/);
  });

  it('checks its health on /health/live', () => {
    const healthcheck = keyword(runtime, 'HEALTHCHECK').at(-1)!;
    expect(healthcheck.getArgumentsContent()).toMatch(/\/health\/live/);
  });

  it('bakes in no secret, and its build context holds none', () => {
    for (const instruction of dockerfile.getInstructions().filter((i) => ['ENV', 'ARG', 'LABEL'].includes(i.getKeyword()))) {
      expect(instruction.getArgumentsContent()).not.toMatch(/DATABASE_URL|DATABASE_DIRECT_URL|JWT_SECRET|PASSWORD|TOKEN|SECRET/i);
    }
    const ignore = readFileSync(join(PROJECT_ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .map((line) => line.trim());
    // Everything is ignored but what the build copies: no .env, no .data, no node_modules, no .git.
    expect(ignore).toContain('*');
    expect(ignore.filter((line) => line.startsWith('!'))).toEqual([
      '!package.json',
      '!package-lock.json',
      '!tsconfig.json',
      '!tsconfig.build.json',
      '!mikro-orm.config.ts',
      '!scripts/build.ts',
      '!src/',
    ]);
  });

  it('ships the V8 heap settings the manifests and the benchmarks use, in a form Node accepts from NODE_OPTIONS', () => {
    const env = keyword(runtime, 'ENV').map((instruction) => instruction.getArgumentsContent() ?? '');
    const shipped = env.map((content) => /^NODE_OPTIONS="([^"]+)"$/.exec(content)?.[1]).find(Boolean);
    expect(shipped).toMatch(/--max-old-space-size=\d+/);
    expect(shipped).toMatch(/--max-semi-space-size=\d+/);
    const manifest = readFileSync(join(PROJECT_ROOT, 'deploy/kubernetes/deployment.yaml'), 'utf8');
    expect(/- name: NODE_OPTIONS\n\s+value: (.+)/.exec(manifest)?.[1]).toBe(shipped);
    const node = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(require("v8").getHeapStatistics().heap_size_limit))'], {
      env: { ...process.env, NODE_OPTIONS: shipped },
      encoding: 'utf8',
    });
    expect(node.status).toBe(0);
    expect(Number(node.stdout)).toBeLessThan(512 * 2 ** 20);
  });
});
