import { register as registerAsyncHooks } from 'node:module';
import { readEnvironment } from '../config/config.js';

/** What `startTracing` set up. */
export interface Tracing {
  /** Whether spans are exported; when not, why. */
  on: boolean;
  off?: 'no OTLP endpoint is set' | 'OTEL_EXPORTER_OTLP_PROTOCOL names no OTLP/HTTP protocol';
  /** Exports the spans still held and ends the SDK; false when that took longer than `timeoutMs`. */
  flush(timeoutMs: number): Promise<boolean>;
}

const OFF = async () => true;

/**
 * OpenTelemetry traces, on only when OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set; off,
 * nothing of OpenTelemetry is loaded.
 *
 * Deciding that, and which exporter the protocol asks for (`http/protobuf`, the default, or `http/json`), is all
 * the reading of OTEL_* done here. Everything else (endpoint paths, headers, OTEL_SERVICE_NAME,
 * OTEL_TRACES_SAMPLER, OTEL_BSP_*, ...) is read by the OpenTelemetry SDK and its exporters themselves. Like every setting, an OTEL_* variable may come from the `.env` file: the
 * environment wins, and the file's OTEL_* entries are copied into it for the SDK to see.
 *
 * It must run before the application is imported: an ES module's imports are all loaded before its code runs, so the
 * hooks that let the instrumentations patch `http`, `express`, `graphql` and `pg` have to be in place first.
 */
export async function startTracing(): Promise<Tracing> {
  for (const [key, value] of Object.entries(readEnvironment())) {
    if (key.startsWith('OTEL_') && process.env[key] === undefined) process.env[key] = value;
  }
  if (!process.env.OTEL_EXPORTER_OTLP_ENDPOINT && !process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) {
    return { on: false, off: 'no OTLP endpoint is set', flush: OFF };
  }

  const protocol = process.env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? process.env.OTEL_EXPORTER_OTLP_PROTOCOL ?? 'http/protobuf';
  if (protocol !== 'http/protobuf' && protocol !== 'http/json') {
    return { on: false, off: 'OTEL_EXPORTER_OTLP_PROTOCOL names no OTLP/HTTP protocol', flush: OFF };
  }
  const { createInstrumentations, startSdk } = await import('./tracing-sdk.js');
  const instrumentations = createInstrumentations();
  await registerImportHooks(
    instrumentations.flatMap((instrumentation) => instrumentation.getModuleDefinitions().map((module) => module.name)),
  );
  const sdk = startSdk(instrumentations, protocol);
  return {
    on: true,
    flush: async (timeoutMs) => {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
      try {
        return await Promise.race([
          sdk.shutdown().then(
            () => true,
            () => false,
          ),
          late,
        ]);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/**
 * import-in-the-middle's loader hooks, limited to the instrumented modules: in this thread where Node allows it
 * (module.registerHooks, Node 22.22.3, 24.11.1 and later), else on the loader thread (module.register).
 */
async function registerImportHooks(include: string[]): Promise<void> {
  const { register, supportsSyncHooks } = await import('import-in-the-middle/register-hooks.mjs');
  if (supportsSyncHooks()) register({ include });
  else registerAsyncHooks('import-in-the-middle/hook.mjs', import.meta.url, { data: { include } });
}
