// Loaded with `--import` into a server under test: reports on stderr each OpenTelemetry SDK or instrumentation
// module the process resolves, so a test can tell that tracing loaded nothing, or that it did.
import { registerHooks } from 'node:module';

const WATCHED = /\/node_modules\/(@opentelemetry\/(sdk-|instrumentation|exporter-)[^/]+|import-in-the-middle|require-in-the-middle)\//;
const seen = new Set();

registerHooks({
  resolve(specifier, context, nextResolve) {
    const result = nextResolve(specifier, context);
    const name = WATCHED.exec(result.url)?.[1];
    if (name && !seen.has(name)) {
      seen.add(name);
      process.stderr.write(`module-watch: loaded ${name}\n`);
    }
    return result;
  },
});
