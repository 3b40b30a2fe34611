import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { parseAllDocuments } from 'yaml';
import { Deployment, type IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import { HorizontalPodAutoscaler, type IHorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { Job, type IJob } from 'kubernetes-models/batch/v1/Job';
import { PodDisruptionBudget, type IPodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { Secret, type ISecret } from 'kubernetes-models/v1/Secret';
import { Service, type IService } from 'kubernetes-models/v1/Service';
import type { IIoK8sApiCoreV1Container as Container } from 'kubernetes-models/v1/Container';
import type { IIoK8sApiCoreV1PodSpec as PodSpec } from 'kubernetes-models/v1/PodSpec';
import { PROJECT_ROOT } from '../../src/config/app-version.js';

/**
 * deploy/kubernetes: every document is checked against the Kubernetes API's own schemas (the OpenAPI definitions
 * that `kubernetes-models` compiles into validators, plus its TypeScript declarations of the same definitions for
 * fields the API does not know), then against the rules the server depends on: probes, shutdown timing,
 * resources, hardening, secrets by reference, and migrations over the direct URL.
 */

const DIR = join(PROJECT_ROOT, 'deploy', 'kubernetes');
const EXAMPLE_SECRET = 'secret.example.yaml';
const SECRET_VARIABLES = ['DATABASE_URL', 'DATABASE_DIRECT_URL', 'JWT_SECRET'];
/** The server's health check answers within this budget (docs/api.md: `health` within 2 s). */
const HEALTH_BUDGET_S = 2;
/** config.ts's default `SHUTDOWN_GRACE_MS`, and main.ts's time to close the pool after it. */
const DEFAULT_SHUTDOWN_GRACE_MS = 10_000;
const CLOSE_S = 5;
/** Start-up in production: DB_CONNECT_RETRIES=5 (6 attempts of DB_CONNECT_TIMEOUT_MS=10 s) and backoff up to 0.5+1+2+4+8 s. */
const WORST_DATABASE_WAIT_S = 6 * 10 + 15.5;

/** The API objects the manifests may hold: the model that validates each, and the declaration that types it. */
const API = {
  'apps/v1 Deployment': { model: Deployment, module: 'kubernetes-models/apps/v1/Deployment', type: 'IDeployment' },
  'v1 Service': { model: Service, module: 'kubernetes-models/v1/Service', type: 'IService' },
  'v1 Secret': { model: Secret, module: 'kubernetes-models/v1/Secret', type: 'ISecret' },
  'batch/v1 Job': { model: Job, module: 'kubernetes-models/batch/v1/Job', type: 'IJob' },
  'policy/v1 PodDisruptionBudget': {
    model: PodDisruptionBudget,
    module: 'kubernetes-models/policy/v1/PodDisruptionBudget',
    type: 'IPodDisruptionBudget',
  },
  'autoscaling/v2 HorizontalPodAutoscaler': {
    model: HorizontalPodAutoscaler,
    module: 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler',
    type: 'IHorizontalPodAutoscaler',
  },
} as const;
type ApiKey = keyof typeof API;

interface Manifest {
  file: string;
  index: number;
  text: string;
  doc: { apiVersion?: unknown; kind?: unknown; metadata?: { name?: unknown } } & Record<string, unknown>;
}

interface Kustomization {
  apiVersion: string;
  kind: string;
  resources?: string[];
  images?: { name: string; newName?: string; newTag?: string }[];
}

const files = readdirSync(DIR)
  .filter((name) => /\.ya?ml$/.test(name))
  .sort();

/** YAML 1.1, as kubectl reads it (`yes` and `on` are booleans there); duplicate keys and any warning fail. */
function load(file: string): Manifest[] {
  const text = readFileSync(join(DIR, file), 'utf8');
  return parseAllDocuments(text, { version: '1.1', uniqueKeys: true }).map((parsed, index) => {
    const problems = [...parsed.errors, ...parsed.warnings].map((problem) => problem.message);
    if (problems.length > 0) throw new Error(`${file} (document ${index + 1}): ${problems.join('; ')}`);
    return { file, index, text, doc: parsed.toJS() };
  });
}

const manifests = files.flatMap(load);
const apiObjects = manifests.filter(({ file }) => file !== 'kustomization.yaml');
const keyOf = ({ doc }: Manifest) => `${String(doc.apiVersion)} ${String(doc.kind)}` as ApiKey;

/** The one document the guard accepts; the file fails to load without exactly one. */
function only<T>(guard: (value: unknown) => value is T, from = apiObjects): T {
  const found = from.map((m): unknown => m.doc).filter(guard);
  if (found.length !== 1) throw new Error(`expected exactly one such document in deploy/kubernetes, found ${found.length}`);
  return found[0]!;
}

const deployment: IDeployment = only(Deployment.is);
const job: IJob = only(Job.is);
const service: IService = only(Service.is);
const pdb: IPodDisruptionBudget = only(PodDisruptionBudget.is);
const hpa: IHorizontalPodAutoscaler = only(HorizontalPodAutoscaler.is);
const exampleSecret: ISecret = only(
  Secret.is,
  apiObjects.filter(({ file }) => file === EXAMPLE_SECRET),
);
const kustomization = only(
  (value): value is Kustomization => (value as Kustomization).kind === 'Kustomization',
  manifests.filter(({ file }) => file === 'kustomization.yaml'),
);

const podSpec = (workload: IDeployment | IJob): PodSpec => workload.spec!.template.spec!;
const theContainer = (workload: IDeployment | IJob): Container => {
  const { containers } = podSpec(workload);
  if (containers.length !== 1) throw new Error(`${workload.kind} should run one container, not ${containers.length}`);
  return containers[0]!;
};
const server = theContainer(deployment);
const migrate = theContainer(job);
const envOf = (container: Container, name: string) => container.env?.find((variable) => variable.name === name);
const portNumber = (container: Container, port: number | string | undefined) =>
  typeof port === 'number' ? port : container.ports?.find((p) => p.name === port)?.containerPort;

/** Kubernetes quantities in bytes, for the suffixes these manifests use. */
function bytes(quantity: string | number | undefined): number {
  const match = /^(\d+)(Ki|Mi|Gi)?$/.exec(String(quantity));
  if (!match) throw new Error(`unexpected quantity ${quantity}`);
  return Number(match[1]) * { Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, '': 1 }[match[2] ?? '']!;
}

/**
 * The same documents as object literals typed by the API's declarations: TypeScript's excess-property check
 * reports a field the API does not have (a misspelt `readinesProbe` would otherwise be dropped without a word).
 */
function unknownFields(objects: Manifest[]): string[] {
  const virtual = join(PROJECT_ROOT, 'test', '__kubernetes_manifests__.ts');
  const imports = new Set<string>();
  const starts: { at: number; label: string }[] = [];
  let body = '';
  objects.forEach((manifest, i) => {
    const { module, type } = API[keyOf(manifest)];
    imports.add(`import type { ${type} } from '${module}';\n`);
    starts.push({ at: body.length, label: `${manifest.file} (document ${manifest.index + 1})` });
    body += `export const doc${i}: ${type} = ${JSON.stringify(manifest.doc, null, 1)};\n`;
  });
  const header = [...imports].join('');
  const source = header + body;
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    target: ts.ScriptTarget.ES2023,
    lib: ['lib.es2023.d.ts'],
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const { getSourceFile, fileExists } = host;
  host.getSourceFile = (name, language, ...rest) =>
    name === virtual ? ts.createSourceFile(name, source, language) : getSourceFile.call(host, name, language, ...rest);
  host.fileExists = (name) => name === virtual || fileExists.call(host, name);
  const program = ts.createProgram([virtual], options, host);
  return ts.getPreEmitDiagnostics(program).map((diagnostic) => {
    const at = (diagnostic.start ?? 0) - header.length;
    const label = diagnostic.file?.fileName === virtual ? starts.filter((s) => s.at <= at).at(-1)?.label : diagnostic.file?.fileName;
    return `${label ?? 'deploy/kubernetes'}: ${ts.flattenDiagnosticMessageText(diagnostic.messageText, ' ')}`;
  });
}

describe('deploy/kubernetes', () => {
  describe('against the Kubernetes API schemas', () => {
    it('holds only YAML documents that are Kubernetes objects or the kustomization', () => {
      expect(files).toEqual(expect.arrayContaining(['kustomization.yaml', EXAMPLE_SECRET]));
      for (const manifest of apiObjects) {
        expect({ where: manifest.file, object: keyOf(manifest), known: keyOf(manifest) in API }).toMatchObject({ known: true });
      }
    });

    it.each(apiObjects.map((manifest) => [`${manifest.file} (document ${manifest.index + 1})`, manifest] as const))(
      '%s is valid',
      (_label, manifest) => {
        const Model = API[keyOf(manifest)].model as unknown as new (data: unknown) => { validate(): void };
        expect(() => new Model(manifest.doc).validate()).not.toThrow();
      },
    );

    it('uses no field the API does not define', () => {
      expect(unknownFields(apiObjects)).toEqual([]);
    });
  });

  describe('kustomization.yaml', () => {
    it('lists every manifest but the example Secret, and nothing else', () => {
      expect(kustomization.apiVersion).toBe('kustomize.config.k8s.io/v1beta1');
      const listed = [...(kustomization.resources ?? [])].sort();
      expect(listed).toEqual(files.filter((name) => name !== 'kustomization.yaml' && name !== EXAMPLE_SECRET));
      expect(listed).not.toContain(EXAMPLE_SECRET);
    });

    it('sets the image that the Deployment and the Job both run', () => {
      expect(migrate.image).toBe(server.image);
      const repository = server.image!.replace(/:[^:/]+$/, '');
      expect(kustomization.images?.map((image) => image.name)).toEqual([repository]);
    });
  });

  describe('the Deployment', () => {
    it('runs the server in production on 0.0.0.0:4000 without migrating, behind one proxy', () => {
      expect(server.image).toMatch(/^[\w.-]+(\/[\w.-]+)+:[\w.-]+$/);
      expect(server.command).toBeUndefined(); // the image's own `node dist/src/main.js`, so SIGTERM reaches node
      expect(server.ports).toEqual([expect.objectContaining({ name: 'http', containerPort: 4000 })]);
      expect(envOf(server, 'NODE_ENV')?.value).toBe('production');
      expect(envOf(server, 'HOST')?.value).toBe('0.0.0.0');
      expect(envOf(server, 'PORT')?.value).toBe('4000');
      expect(envOf(server, 'MIGRATE_ON_START')?.value).toBe('false');
      expect(envOf(server, 'TRUST_PROXY')?.value).toBe('1');
      expect(deployment.spec!.selector.matchLabels).toEqual(expect.objectContaining(deployment.spec!.template.metadata!.labels));
    });

    it('probes readiness on /health/ready, liveness and start-up on /health/live, each with more than the 2 s budget', () => {
      const { readinessProbe, livenessProbe, startupProbe } = server;
      expect(readinessProbe?.httpGet?.path).toBe('/health/ready');
      expect(livenessProbe?.httpGet?.path).toBe('/health/live');
      expect(startupProbe?.httpGet?.path).toBe('/health/live');
      for (const probe of [readinessProbe!, livenessProbe!, startupProbe!]) {
        expect(portNumber(server, probe.httpGet!.port)).toBe(4000);
        expect(probe.timeoutSeconds).toBeGreaterThan(HEALTH_BUDGET_S);
      }
      // Until the server listens (after the database answered), only the start-up probe runs.
      expect(startupProbe!.periodSeconds! * startupProbe!.failureThreshold!).toBeGreaterThan(WORST_DATABASE_WAIT_S);
    });

    it('waits before SIGTERM and gives the server time to drain and close before SIGKILL', () => {
      const preStop = server.lifecycle?.preStop;
      expect(preStop?.exec).toBeUndefined(); // no shell in the image
      expect(preStop?.sleep?.seconds).toBeGreaterThan(0);
      const graceMs = Number(envOf(server, 'SHUTDOWN_GRACE_MS')?.value ?? DEFAULT_SHUTDOWN_GRACE_MS);
      expect(podSpec(deployment).terminationGracePeriodSeconds).toBeGreaterThan(preStop!.sleep!.seconds + graceMs / 1000 + CLOSE_S);
    });

    it('requests and limits resources, with the heap below the memory limit', () => {
      const { requests, limits } = server.resources!;
      expect(requests).toEqual(expect.objectContaining({ cpu: expect.anything(), memory: expect.anything() }));
      expect(bytes(limits?.memory)).toBeGreaterThanOrEqual(bytes(requests!.memory));
      const heapMb = Number(/--max-old-space-size=(\d+)/.exec(envOf(server, 'NODE_OPTIONS')?.value ?? '')?.[1]);
      expect(heapMb * 1024 ** 2).toBeLessThan(bytes(limits!.memory));
    });

    it('is scraped by Prometheus on /metrics', () => {
      expect(deployment.spec!.template.metadata!.annotations).toEqual(
        expect.objectContaining({ 'prometheus.io/scrape': 'true', 'prometheus.io/path': '/metrics', 'prometheus.io/port': '4000' }),
      );
    });

    it('leaves the replica count to the HPA', () => {
      expect(deployment.spec!.replicas).toBeUndefined();
    });
  });

  describe('the migration Job', () => {
    it('runs `npm run db:migrate` once per attempt, with retries and clean-up', () => {
      expect([...(migrate.command ?? []), ...(migrate.args ?? [])].join(' ')).toBe('npm run db:migrate');
      expect(podSpec(job).restartPolicy).toBe('Never');
      expect(job.spec!.backoffLimit).toBeGreaterThanOrEqual(1);
      expect(job.spec!.ttlSecondsAfterFinished).toBeGreaterThan(0);
      expect(envOf(migrate, 'NODE_ENV')?.value).toBe('production');
    });

    it('migrates over the direct URL, for DATABASE_URL too', () => {
      for (const name of ['DATABASE_URL', 'DATABASE_DIRECT_URL']) {
        expect(envOf(migrate, name)?.valueFrom?.secretKeyRef?.key).toBe(envOf(server, 'DATABASE_DIRECT_URL')?.valueFrom?.secretKeyRef?.key);
      }
      expect(envOf(server, 'DATABASE_URL')?.valueFrom?.secretKeyRef?.key).not.toBe(
        envOf(migrate, 'DATABASE_URL')?.valueFrom?.secretKeyRef?.key,
      );
    });
  });

  describe.each([
    ['Deployment', deployment],
    ['migration Job', job],
  ] as const)('the %s', (_name, workload) => {
    it('runs hardened: non-root uid 10001, read-only root, no privilege escalation, no capabilities, RuntimeDefault seccomp', () => {
      const pod = podSpec(workload).securityContext ?? {};
      const container = theContainer(workload).securityContext ?? {};
      const effective = { ...pod, ...container };
      expect(effective).toEqual(
        expect.objectContaining({
          runAsNonRoot: true,
          runAsUser: 10001,
          readOnlyRootFilesystem: true,
          allowPrivilegeEscalation: false,
          seccompProfile: { type: 'RuntimeDefault' },
        }),
      );
      expect(container.capabilities?.drop).toContain('ALL');
      expect(container.capabilities?.add ?? []).toEqual([]);
      expect(container.privileged).not.toBe(true);
    });

    it('has a writable emptyDir at /tmp, since the root filesystem is read-only', () => {
      const mount = theContainer(workload).volumeMounts?.find((m) => m.mountPath === '/tmp');
      const volume = podSpec(workload).volumes?.find((v) => v.name === mount?.name);
      expect(volume?.emptyDir).toBeDefined();
    });

    it('requests CPU and memory and limits memory', () => {
      const { requests, limits } = theContainer(workload).resources ?? {};
      expect(requests?.cpu).toBeDefined();
      expect(requests?.memory).toBeDefined();
      expect(limits?.memory).toBeDefined();
    });

    it('takes the database URLs and the JWT secret from the Secret by reference', () => {
      const secretName = exampleSecret.metadata!.name;
      const keys = Object.keys({ ...exampleSecret.stringData, ...exampleSecret.data });
      for (const name of SECRET_VARIABLES) {
        const variable = envOf(theContainer(workload), name);
        expect({ name, value: variable?.value }).toEqual({ name, value: undefined });
        expect(variable?.valueFrom?.secretKeyRef).toEqual(expect.objectContaining({ name: secretName }));
        expect(keys).toContain(variable!.valueFrom!.secretKeyRef!.key);
      }
      expect(podSpec(workload).automountServiceAccountToken).toBe(false);
    });
  });

  describe('secrets', () => {
    it('appear nowhere as a literal value outside the example Secret', () => {
      for (const { file, doc, text } of apiObjects.filter((manifest) => manifest.file !== EXAMPLE_SECRET)) {
        expect({ file, kind: doc.kind }).not.toMatchObject({ kind: expect.stringMatching(/^(Secret|ConfigMap)$/) });
        expect({ file, url: /postgres(ql)?:\/\//i.test(text) }).toEqual({ file, url: false });
        const literal = JSON.stringify(doc).match(/"name":"(DATABASE_URL|DATABASE_DIRECT_URL|JWT_SECRET)","value"/);
        expect({ file, literal: literal?.[1] }).toEqual({ file, literal: undefined });
      }
    });

    it('are placeholders in the example, which says it is one', () => {
      const { file, text } = apiObjects.find((manifest) => manifest.file === EXAMPLE_SECRET)!;
      expect(text).toMatch(/EXAMPLE/);
      const values = Object.values({ ...exampleSecret.stringData, ...exampleSecret.data });
      expect(values.length).toBeGreaterThanOrEqual(3);
      expect({ file, values: [...new Set(values)] }).toEqual({ file, values: ['REPLACE_ME'] });
    });
  });

  describe('Service, PodDisruptionBudget and HorizontalPodAutoscaler', () => {
    const serverLabels = deployment.spec!.template.metadata!.labels!;
    const selects = (selector: Record<string, string> | undefined, labels: Record<string, string>) =>
      Object.entries(selector ?? {}).every(([key, value]) => labels[key] === value);

    it('the Service is a ClusterIP on port 80 to the server pods (never the Job) on 4000', () => {
      expect(service.spec!.type ?? 'ClusterIP').toBe('ClusterIP');
      expect(service.spec!.ports).toHaveLength(1);
      const [port] = service.spec!.ports!;
      expect(port!.port).toBe(80);
      expect(portNumber(server, port!.targetPort)).toBe(4000);
      expect(selects(service.spec!.selector, serverLabels)).toBe(true);
      expect(selects(service.spec!.selector, job.spec!.template.metadata!.labels!)).toBe(false);
    });

    it('the PDB keeps all but one server pod through voluntary disruptions', () => {
      const { minAvailable, maxUnavailable } = pdb.spec!;
      expect(minAvailable ?? maxUnavailable).toBeDefined();
      expect(selects(pdb.spec!.selector?.matchLabels, serverLabels)).toBe(true);
      expect(selects(pdb.spec!.selector?.matchLabels, job.spec!.template.metadata!.labels!)).toBe(false);
    });

    it('the HPA scales the Deployment from 2 pods on CPU utilization', () => {
      expect(hpa.spec!.scaleTargetRef).toEqual(expect.objectContaining({ kind: 'Deployment', name: deployment.metadata!.name }));
      expect(hpa.spec!.minReplicas).toBeGreaterThanOrEqual(2);
      expect(hpa.spec!.maxReplicas).toBeGreaterThan(hpa.spec!.minReplicas!);
      expect(hpa.spec!.metrics).toEqual(
        expect.arrayContaining([
          expect.objectContaining({
            type: 'Resource',
            resource: expect.objectContaining({ name: 'cpu', target: expect.objectContaining({ type: 'Utilization' }) }),
          }),
        ]),
      );
      expect(server.resources?.requests?.cpu).toBeDefined(); // utilization is measured against the request
    });
  });
});
