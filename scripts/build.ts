// `npm run build [-- --outDir DIR]`: the production build, in DIR (dist/ by default). tsc compiles the TypeScript
// module for module, as before: its output keeps the decorator metadata TypeGraphQL and MikroORM read, and the
// MikroORM CLI (dist/mikro-orm.config.js), the migrations and the seeders run from it. Then two of its modules are
// replaced by esbuild bundles of that same output and of its dependencies, so that a start reads a few large files
// rather than 1,700 small ones (docs/performance.md, "Start-up"):
// - DIR/src/main.js, the entry, by a bundle of everything: the new main.js turns Node's compile cache on, then
//   imports it;
// - DIR/src/server.js, which the entry imports instead of its own copy when tracing is on, by a bundle that leaves
//   express, pg and graphql to Node, for OpenTelemetry to patch as they load.
//
// Run by Node's own type stripping, without a loader: this file imports nothing of the project.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build, type Metafile, type Plugin } from 'esbuild';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const MODULES = join(ROOT, 'node_modules') + sep;

const packageJson = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };

/**
 * Left to Node to load from node_modules by both bundles. OpenTelemetry is loaded only when tracing is on, and hooks
 * the loader itself; its API alone is bundled (it keeps its state in one global, whichever copy sets it). bcrypt is
 * a native addon; class-validator is TypeGraphQL's optional peer, which is not installed.
 */
const EXTERNAL = [
  ...Object.keys(packageJson.dependencies).filter((name) => name.startsWith('@opentelemetry/') && name !== '@opentelemetry/api'),
  'import-in-the-middle',
  'require-in-the-middle',
  'bcrypt',
  'class-validator',
];

/** Left to Node by the traced server's bundle too: OpenTelemetry instruments them by hooking Node's loader. */
const TRACED_EXTERNAL = ['express', 'pg', 'pg-pool', 'graphql'];

/**
 * The bundles, each of a module of tsc's output in DIR/src: its entry file, beside the module, and the prefix of its
 * chunks. All the files are in that one folder, which `ownLocations` relies on.
 */
const BUNDLES = [
  { module: 'main.js', entry: 'main-start', external: EXTERNAL },
  { module: 'server.js', entry: 'traced-start', external: [...EXTERNAL, ...TRACED_EXTERNAL] },
];
const OUTPUT = /^(main|traced)-.+\.js(\.map)?$/;

/** The start of every chunk: a `require` for the CommonJS code in it, and where the chunk is. */
const BANNER = [
  `import { createRequire as __bundleCreateRequire } from 'node:module';`,
  `import { dirname as __bundleDirname } from 'node:path';`,
  `import { fileURLToPath as __bundleFileURLToPath } from 'node:url';`,
  `const require = __bundleCreateRequire(import.meta.url);`,
  `const __bundleUrl = import.meta.url;`,
].join(' ');

/**
 * Where `file`, read at build time, is in the install: `dist/` (outDir) beside `node_modules/`. The build reads the
 * dependencies from this project's node_modules, which the production install repeats (the same lock, less the
 * dev dependencies), or from the install's own when it is rebuilt there.
 */
function installedPath(file: string, outDir: string): string {
  if (file.startsWith(MODULES)) return join(dirname(outDir), 'node_modules', file.slice(MODULES.length));
  if (file.startsWith(join(dirname(outDir), 'node_modules') + sep) || file.startsWith(outDir + sep)) return file;
  throw new Error(`${file} is bundled but is neither in ${outDir} nor in ${MODULES}`);
}

/**
 * Every bundled module keeps its own location: `import.meta.url` (and `__dirname`, `__filename` in CommonJS) name
 * the file it was bundled from, which the install still holds, rather than the chunk. The project finds its root
 * (src/config/app-version.ts) and its migrations (src/db/orm-options.ts) that way, and dependencies their files.
 */
function ownLocations(outDir: string, bundleDir: string): Plugin {
  return {
    name: 'own-locations',
    setup(build) {
      build.onLoad({ filter: /\.[cm]?js$/ }, (args) => {
        const source = readFileSync(args.path, 'utf8');
        const usesMeta = /\bimport\.meta\.(url|filename|dirname)\b/.test(source);
        const usesDirname = /\b__(dirname|filename)\b/.test(source);
        if (!usesMeta && !usesDirname) return undefined;
        const path = relative(bundleDir, installedPath(args.path, outDir)).split(sep).join('/');
        const url = `new URL(${JSON.stringify(path)}, __bundleUrl)`;
        let contents = source
          .replace(/\bimport\.meta\.url\b/g, `${url}.href`)
          .replace(/\bimport\.meta\.filename\b/g, `__bundleFileURLToPath(${url})`)
          .replace(/\bimport\.meta\.dirname\b/g, `__bundleDirname(__bundleFileURLToPath(${url}))`);
        // A module that declares its own (from import.meta.url, rewritten above) keeps it.
        if (usesDirname && !/\b(var|let|const|function)\s+__(dirname|filename)\b/.test(source)) {
          contents = `var __filename = __bundleFileURLToPath(${url}), __dirname = __bundleDirname(__filename);\n${contents}`;
        }
        return { contents, loader: 'js' };
      });
    },
  };
}

/**
 * Node's built-in modules are required, not imported: importing one as an ES module reads every export, which runs
 * its lazy getters (`node:http`'s load Node's fetch implementation, undici; `node:crypto`'s, WebCrypto).
 */
function builtinsRequired(): Plugin {
  return {
    name: 'builtins-required',
    setup(build) {
      build.onResolve({ filter: /^(node:)?[a-z_]+(\/[a-z_]+)?$/ }, (args) => {
        if (!isBuiltin(args.path) || args.kind === 'require-call') return undefined;
        return { path: args.path.replace(/^node:/, ''), namespace: 'builtin' };
      });
      build.onLoad({ filter: /.*/, namespace: 'builtin' }, (args) => ({
        contents: `module.exports = require(${JSON.stringify(`node:${args.path}`)});`,
        loader: 'js',
      }));
    },
  };
}

/**
 * A package that the build finds only because the dev dependencies are installed here (MikroORM tries
 * `tinyglobby`, which only a lint tool brings) stays an import: the production install lacks it, and the code
 * must meet that there as it did before.
 */
function productionOnly(): Plugin {
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
  return {
    name: 'production-only',
    setup(build) {
      build.onResolve({ filter: /^[@a-z]/i }, async (args) => {
        if (args.pluginData === 'production-only') return undefined;
        const { kind, importer, resolveDir } = args;
        const resolved = await build.resolve(args.path, { kind, importer, resolveDir, pluginData: 'production-only' });
        if (resolved.errors.length > 0 || resolved.external || !resolved.path.startsWith(MODULES)) return undefined;
        const key = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)/.exec(relative(ROOT, resolved.path).split(sep).join('/'))![1]!;
        return lock.packages[key]?.dev ? { path: args.path, external: true } : undefined;
      });
    },
  };
}

/** The folder of `name` that Node loads when code in the folder `from` imports it, if any. */
function packageDir(name: string, from: string): string | undefined {
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    if (dirname(dir) === dir) return undefined;
  }
}

/**
 * An external import is resolved from the chunk's folder, not from the module that wrote it: both must find the
 * same copy of the package (a dependency with a nested version of its own, of graphql say, would get another).
 */
function checkExternals(metafile: Metafile, outDir: string): void {
  // Where Node looks from dist/src: the install's node_modules, or this project's, where the build found them.
  const base = existsSync(join(dirname(outDir), 'node_modules')) ? join(outDir, 'src') : ROOT;
  for (const [input, { imports }] of Object.entries(metafile.inputs)) {
    for (const { path, external } of imports) {
      if (!external || isBuiltin(path) || !/^[@a-z]/i.test(path)) continue;
      const name = path
        .split('/')
        .slice(0, path.startsWith('@') ? 2 : 1)
        .join('/');
      const importer = resolve(ROOT, input);
      const wanted = packageDir(name, importer.includes(`${sep}node_modules${sep}`) ? dirname(importer) : base);
      const found = packageDir(name, base);
      if (wanted !== found) throw new Error(`${input} imports ${path} from ${wanted}, but the bundle would load ${found}`);
    }
  }
}

/**
 * What replaces main.js. Node compiles a module's whole static graph before it runs any of it, so the compile cache
 * is turned on here, before the bundle is imported, for it to cover all of it. The cache lives in the OS's
 * temporary folder; NODE_DISABLE_COMPILE_CACHE=1 turns it off.
 */
const MAIN = `// Written by scripts/build.ts: Node's compile cache on, then the bundle of src/main.ts.
import { enableCompileCache } from 'node:module';
enableCompileCache();
await import('./main-start.js');
`;

/** What replaces server.js: the bundle of src/server.ts that leaves express, pg and graphql to Node. */
const SERVER = `// Written by scripts/build.ts: the bundle of src/server.ts, for src/main.ts to import when tracing is on.
export * from './traced-start.js';
`;

/** Bundles tsc's `module`, in `bundleDir`, into `entry` and its chunks beside it. */
async function bundleModule(outDir: string, { module, entry, external }: (typeof BUNDLES)[number]): Promise<void> {
  const bundleDir = join(outDir, 'src');
  const { metafile } = await build({
    entryPoints: { [entry]: join(bundleDir, module) },
    outdir: bundleDir,
    absWorkingDir: ROOT,
    // Where outDir is outside the project (a production install being made), the packages are found here.
    nodePaths: [join(ROOT, 'node_modules')],
    bundle: true,
    // What is imported dynamically (the server after tracing, graphql-jit, the migrator...) is a chunk of its own,
    // loaded no earlier than before.
    splitting: true,
    chunkNames: `${entry.split('-')[0]}-[name]-[hash]`,
    format: 'esm',
    platform: 'node',
    target: 'node22',
    // Resolved as Node resolves: no "module" field, no "module" condition.
    mainFields: ['main'],
    conditions: [],
    external,
    // No comments (some are not ASCII, which would make V8 hold and parse the whole chunk as two-byte text), no
    // indentation; every name kept: TypeGraphQL and MikroORM name GraphQL types and entities after their classes.
    minifyWhitespace: true,
    keepNames: true,
    banner: { js: BANNER },
    // For `node --enable-source-maps`: lines of the bundle back to src/*.ts through tsc's own maps.
    sourcemap: true,
    sourcesContent: false,
    metafile: true,
    logLevel: 'warning',
    plugins: [builtinsRequired(), productionOnly(), ownLocations(outDir, bundleDir)],
  });
  for (const output of Object.keys(metafile.outputs)) {
    const file = resolve(ROOT, output);
    if (dirname(file) !== bundleDir || !OUTPUT.test(file.slice(bundleDir.length + 1))) {
      throw new Error(`bundle output ${output} is not beside ${join(bundleDir, module)}`);
    }
  }
  checkExternals(metafile, outDir);
}

/**
 * Replaces DIR/src/main.js and DIR/src/server.js, as tsc wrote them, by their bundles: main-*.js and traced-*.js
 * beside them, and a main.js and a server.js that load them.
 */
export async function bundle(outDir: string): Promise<void> {
  const bundleDir = join(outDir, 'src');
  for (const file of readdirSync(bundleDir)) if (OUTPUT.test(file)) rmSync(join(bundleDir, file));
  for (const spec of BUNDLES) await bundleModule(outDir, spec);
  writeFileSync(join(bundleDir, 'main.js'), MAIN);
  writeFileSync(join(bundleDir, 'server.js'), SERVER);
  for (const { module } of BUNDLES) rmSync(join(bundleDir, `${module}.map`), { force: true });
}

if (resolve(process.argv[1] ?? '') === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { outDir: { type: 'string', default: 'dist' } } });
  const outDir = resolve(values.outDir);
  const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json', '--outDir', outDir], { cwd: ROOT, stdio: 'inherit' });
  await bundle(outDir);
}
