import type { IncomingMessage } from 'node:http';
import { OTLPTraceExporter as JsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as ProtobufExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import type { InstrumentationBase } from '@opentelemetry/instrumentation';
import { ExpressInstrumentation } from '@opentelemetry/instrumentation-express';
import { GraphQLInstrumentation } from '@opentelemetry/instrumentation-graphql';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { PgInstrumentation } from '@opentelemetry/instrumentation-pg';
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { BatchSpanProcessor, type SpanProcessor } from '@opentelemetry/sdk-trace';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import { APP_VERSION } from '../config/app-version.js';
import { ScrubbingSpanProcessor } from './span-scrubber.js';

/** Probes and scrapes, every few seconds from every orchestrator: no trace of their own. */
const UNTRACED = /^\/(?:health(?:\/(?:live|ready))?|metrics)\/?(?:\?|$)/;

/**
 * HTTP server, Express, the GraphQL operation (no span per field) and each SQL statement. They stay disabled until
 * the SDK starts, so nothing is hooked when OTEL_SDK_DISABLED is set.
 */
export function createInstrumentations(): InstrumentationBase[] {
  return [
    new HttpInstrumentation({
      enabled: false,
      ignoreIncomingRequestHook: (request: IncomingMessage) => UNTRACED.test(request.url ?? ''),
      // The only outgoing HTTP is the exporter's own.
      disableOutgoingRequestInstrumentation: true,
    }),
    new ExpressInstrumentation({ enabled: false }),
    new GraphQLInstrumentation({ enabled: false, allowValues: false, ignoreResolveSpans: true }),
    // Statements outside a request (migrations, rate-limit sweeps) start no trace of their own.
    new PgInstrumentation({ enabled: false, requireParentSpan: true, enhancedDatabaseReporting: false }),
  ];
}

/**
 * The scrubber first, then the batch exporter: every span is cleaned before it is queued. The exporter for the
 * protocol asked for reads its endpoint, headers and timeout from OTEL_EXPORTER_OTLP_* itself, the batch processor
 * its OTEL_BSP_* settings, and the provider its sampler (OTEL_TRACES_SAMPLER).
 */
function spanProcessors(protocol: string): SpanProcessor[] {
  const exporter = protocol === 'http/json' ? new JsonExporter() : new ProtobufExporter();
  return [new ScrubbingSpanProcessor(), new BatchSpanProcessor({ exporter })];
}

export interface TracingSdk {
  /** Ends the SDK, exporting the spans it still holds. */
  shutdown(): Promise<void>;
}

/** Starts the SDK with these (already constructed) instrumentations, exporting over OTLP/HTTP in `protocol`. */
export function startSdk(instrumentations: InstrumentationBase[], protocol: string): TracingSdk {
  const sdk = new NodeSDK({
    spanProcessors: spanProcessors(protocol),
    // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, read by the SDK's own detector, win over these.
    resource: defaultResource().merge(
      resourceFromAttributes({ [ATTR_SERVICE_NAME]: 'todo-graphql-server', [ATTR_SERVICE_VERSION]: APP_VERSION }),
    ),
    instrumentations,
    // Traces only: metrics are Prometheus on /metrics and logs are JSON lines on stdout.
    metricReaders: [],
    logRecordProcessors: [],
  });
  sdk.start();
  return sdk;
}
