import { createServer } from 'node:http';

/** One POST the receiver got, as it arrived. */
export interface OtlpExport {
  contentType: string;
  body: Buffer;
}

/** A span of an OTLP/JSON export, with its attributes flattened to plain values. */
export interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  /** 1 internal, 2 server, 3 client. */
  kind: number;
  durationMs: number;
  scope: string;
  attributes: Record<string, unknown>;
}

export interface OtlpReceiver {
  /** What OTEL_EXPORTER_OTLP_ENDPOINT is set to: the exporter appends `/v1/traces`. */
  endpoint: string;
  exports: OtlpExport[];
  /** Every span of every OTLP/JSON export so far. */
  spans(): OtlpSpan[];
  /** Resolves once `found` holds for the spans received, polling; rejects after `timeoutMs`. */
  waitFor(found: (spans: OtlpSpan[]) => boolean, timeoutMs?: number): Promise<OtlpSpan[]>;
  close(): Promise<void>;
}

interface JsonValue {
  stringValue?: string;
  intValue?: string | number;
  doubleValue?: number;
  boolValue?: boolean;
  arrayValue?: { values?: JsonValue[] };
}

const plain = (value: JsonValue): unknown =>
  value.stringValue ??
  (value.intValue !== undefined ? Number(value.intValue) : undefined) ??
  value.doubleValue ??
  value.boolValue ??
  value.arrayValue?.values?.map(plain);

interface JsonExport {
  resourceSpans?: {
    scopeSpans?: {
      scope?: { name?: string };
      spans?: {
        traceId: string;
        spanId: string;
        parentSpanId?: string;
        name: string;
        kind: number;
        startTimeUnixNano: string;
        endTimeUnixNano: string;
        attributes?: { key: string; value: JsonValue }[];
      }[];
    }[];
  }[];
}

/** An OTLP/HTTP collector in the test process: accepts POST /v1/traces in either encoding and keeps every body. */
export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const exports: OtlpExport[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/traces') return void res.writeHead(404).end();
      const contentType = req.headers['content-type'] ?? '';
      exports.push({ contentType, body: Buffer.concat(chunks) });
      // An empty ExportTraceServiceResponse: `{}` in JSON, zero bytes in protobuf.
      if (contentType.includes('json')) res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      else res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };

  const spans = () =>
    exports
      .filter((received) => received.contentType.includes('json'))
      .flatMap((received) => (JSON.parse(received.body.toString()) as JsonExport).resourceSpans ?? [])
      .flatMap((resource) => resource.scopeSpans ?? [])
      .flatMap((scope) =>
        (scope.spans ?? []).map((span) => ({
          traceId: span.traceId,
          spanId: span.spanId,
          parentSpanId: span.parentSpanId ?? '',
          name: span.name,
          kind: span.kind,
          durationMs: Number(BigInt(span.endTimeUnixNano) - BigInt(span.startTimeUnixNano)) / 1e6,
          scope: scope.scope?.name ?? '',
          attributes: Object.fromEntries((span.attributes ?? []).map(({ key, value }) => [key, plain(value)])),
        })),
      );

  return {
    endpoint: `http://127.0.0.1:${port}`,
    exports,
    spans,
    waitFor: async (found, timeoutMs = 10_000) => {
      const deadline = Date.now() + timeoutMs;
      while (!found(spans())) {
        if (Date.now() > deadline)
          throw new Error(`spans not received within ${timeoutMs} ms: ${JSON.stringify(spans().map((span) => span.name))}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      return spans();
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
