/**
 * deploy/: the Grafana dashboard and the Prometheus rules name only metrics Tributary exports
 * (with labels they have), the compose file refers to files that exist, the Kubernetes
 * manifests pass the Kubernetes schemas (kubernetes-models) and hold what running Tributary
 * needs, and the Dockerfile builds a non-root image without dev dependencies.
 *
 * Docker cannot run here (no daemon, no compose plugin): these checks are what is possible
 * offline. test/integration/held-back.test.ts scrapes a real `tributary run` too.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import YAML from 'yaml';
import { ConfigMap, Secret, Service } from 'kubernetes-models/v1';
import { StatefulSet } from 'kubernetes-models/apps/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { loadConfig } from '../../src/config/load.js';
import { Metrics, defineRuntimeMetrics } from '../../src/runtime/metrics.js';
import { REPO, TempDir } from '../helpers/context.js';
import { alertRules, dashboardExprs, metricRefs } from '../helpers/deploy-metrics.js';

const DEPLOY = join(REPO, 'deploy');
const read = (...p: string[]) => readFileSync(join(DEPLOY, ...p), 'utf8');

type Panel = { id: number; type: string; title: string; datasource?: unknown; targets?: { expr: string }[]; panels?: Panel[]; gridPos: { h: number; w: number; x: number; y: number } };
const rules = alertRules;

/** The registry `tributary run` builds (src/cli/main.ts): runtime metrics plus process metrics. */
function runtimeRegistry(): Metrics {
  const m = new Metrics();
  defineRuntimeMetrics(m);
  m.collectProcessMetrics();
  return m;
}

describe('deploy/: Grafana dashboard and Prometheus rules', () => {
  const metrics = runtimeRegistry();
  const exported = new Set(metrics.names());

  /** Names each expression refers to must be registered, with labels the metric has. */
  function checkExprs(where: string, exprs: string[]): Set<string> {
    const used = new Set<string>();
    for (const e of exprs) {
      const refs = metricRefs(e);
      for (const r of refs) {
        used.add(r.name);
        assert.ok(exported.has(r.name), `${where}: ${r.name} is not exported (in: ${e})`);
        const known = metrics.labelNames(r.name);
        for (const l of r.labels) if (l !== 'instance' && l !== 'job') assert.ok(known.includes(l), `${where}: ${r.name} has no label "${l}" (it has: ${known.join(', ') || 'none'})`);
      }
    }
    return used;
  }

  it('the extraction finds names, and a wrong name or label fails', () => {
    assert.deepEqual(metricRefs('sum by (p) (rate(tributary_events_out_total{pipeline=~"$p",sink!="x"}[1m])) / tributary_x'), [
      { name: 'tributary_events_out_total', labels: ['pipeline', 'sink'] },
      { name: 'tributary_x', labels: [] },
    ]);
    assert.throws(() => checkExprs('probe', ['tributary_sink_lag_secs']), /tributary_sink_lag_secs is not exported/);
    assert.throws(() => checkExprs('probe', ['tributary_source_up{sink="a"}']), /has no label "sink"/);
  });

  it('every metric the dashboard names is exported by the runtime registry', () => {
    const used = checkExprs('deploy/grafana/tributary.json', dashboardExprs());
    // What the issue asks the dashboard to show.
    for (const need of [
      'tributary_sink_lag_seconds', 'tributary_sink_lag_events', 'tributary_events_in_total', 'tributary_events_out_total',
      'tributary_source_retained_wal_bytes', 'tributary_source_retained_binlog_files', 'tributary_dead_letter_depth',
      'tributary_snapshot_rows_total', 'tributary_log_bytes', 'tributary_log_horizon_timestamp_seconds', 'tributary_source_up',
      'tributary_source_reconnects_total', 'tributary_source_last_event_seconds',
    ]) assert.ok(used.has(need), `the dashboard shows ${need}`);
  });

  it('the dashboard is well formed: unique panel ids, a datasource on every query panel, grid inside 24 columns', () => {
    const dash = JSON.parse(read('grafana', 'tributary.json')) as { uid: string; panels: Panel[]; templating: { list: { name: string }[] } };
    assert.equal(dash.uid, 'tributary');
    const ids = dash.panels.map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length, 'panel ids are unique');
    for (const p of dash.panels) {
      assert.ok(p.gridPos.x + p.gridPos.w <= 24, `${p.title} fits the grid`);
      if (p.type !== 'row') {
        assert.ok(p.datasource, `${p.title} has a datasource`);
        assert.ok(p.targets?.length, `${p.title} has queries`);
      }
    }
    // Variables the queries use are defined.
    const vars = new Set(dash.templating.list.map((v) => v.name));
    for (const e of dashboardExprs()) for (const m of e.matchAll(/\$([a-z_]+)/g)) if (!m[1]!.startsWith('_')) assert.ok(vars.has(m[1]!), `variable $${m[1]} is defined`);
  });

  it('every metric the alert rules name is exported, and the rules the issue asks for are there', () => {
    const rs = rules();
    const used = checkExprs('deploy/prometheus/alerts.yaml', rs.map((r) => r.expr));
    for (const r of rs) {
      assert.match(r.alert, /^Tributary[A-Z]\w+$/);
      assert.ok(r.labels?.severity, `${r.alert} has a severity`);
      assert.ok(r.annotations?.summary, `${r.alert} has a summary`);
      if (r.for) assert.match(r.for, /^\d+[smh]$/);
    }
    const byMetric = (name: string, op: RegExp) => rs.some((r) => r.expr.includes(name) && op.test(r.expr));
    assert.ok(byMetric('tributary_sink_lag_seconds', />\s*\d+/), 'lag over N seconds');
    assert.ok(byMetric('tributary_source_retained_wal_bytes', />/), 'retained WAL over N bytes');
    assert.ok(byMetric('tributary_dead_letter_depth', />\s*0/), 'dead letters > 0');
    assert.ok(byMetric('tributary_pipeline_running', /==\s*0/), 'a pipeline down');
    assert.ok(used.has('tributary_source_up'));
  });

  it('prometheus.yml loads the rules compose mounts and scrapes the tributary service', () => {
    const prom = YAML.parse(read('prometheus', 'prometheus.yml')) as { rule_files: string[]; scrape_configs: { job_name: string; metrics_path?: string; static_configs: { targets: string[] }[] }[] };
    const job = prom.scrape_configs.find((j) => j.job_name === 'tributary');
    assert.ok(job);
    assert.equal(job.metrics_path ?? '/metrics', '/metrics');
    assert.deepEqual(job.static_configs[0]!.targets, ['tributary:8083']);
    const compose = YAML.parse(read('compose.yaml')) as { services: Record<string, { volumes?: string[] }> };
    const mounts = compose.services.prometheus!.volumes!.map((v) => v.split(':'));
    for (const f of prom.rule_files) assert.ok(mounts.some(([src, dst]) => dst === f && src!.endsWith('alerts.yaml')), `${f} is mounted from alerts.yaml`);
    // The alert names a job label the scrape config gives.
    assert.ok(rules().some((r) => r.expr.includes('up{job="tributary"}')));
  });
});

describe('deploy/compose.yaml', () => {
  type Service = { image?: string; build?: { context: string; dockerfile?: string }; command?: string[]; volumes?: string[]; environment?: Record<string, string>; depends_on?: unknown; secrets?: string[] };
  const compose = YAML.parse(read('compose.yaml')) as { services: Record<string, Service>; volumes: Record<string, unknown>; secrets: Record<string, { file: string }> };

  it('brings up Postgres (wal_level=logical), Redis, Tributary, Prometheus and Grafana', () => {
    assert.deepEqual(Object.keys(compose.services).sort(), ['grafana', 'postgres', 'prometheus', 'redis', 'tributary']);
    assert.ok(compose.services.postgres!.command!.includes('wal_level=logical'));
    const build = compose.services.tributary!.build!;
    assert.ok(existsSync(join(resolve(DEPLOY, build.context), build.dockerfile ?? 'Dockerfile')), 'the build context holds the Dockerfile');
  });

  it('every file it mounts exists, and every named volume and secret is declared', () => {
    for (const [name, svc] of Object.entries(compose.services)) {
      for (const v of svc.volumes ?? []) {
        const [src] = v.split(':');
        if (src!.startsWith('.')) assert.ok(existsSync(resolve(DEPLOY, src!)), `${name}: ${src} exists`);
        else assert.ok(src! in compose.volumes, `${name}: volume ${src} is declared`);
      }
      for (const s of svc.secrets ?? []) assert.ok(compose.secrets[s], `${name}: secret ${s} is declared`);
    }
    // The secret's file is made by the user (the header says how) and git-ignored.
    assert.match(readFileSync(join(REPO, '.gitignore'), 'utf8'), /^deploy\/tributary-token$/m);
    assert.match(read('compose.yaml'), /openssl rand -hex 32 > deploy\/tributary-token/);
  });

  it('Grafana is provisioned with the Prometheus datasource and the dashboard file', () => {
    const mounts = compose.services.grafana!.volumes!.map((v) => v.split(':'));
    const ds = YAML.parse(read('grafana', 'provisioning', 'datasources', 'prometheus.yaml')) as { datasources: { type: string; url: string }[] };
    assert.equal(ds.datasources[0]!.type, 'prometheus');
    assert.equal(ds.datasources[0]!.url, 'http://prometheus:9090');
    const prov = YAML.parse(read('grafana', 'provisioning', 'dashboards', 'tributary.yaml')) as { providers: { options: { path: string } }[] };
    const dashDir = prov.providers[0]!.options.path;
    assert.ok(mounts.some(([src, dst]) => src === './grafana/tributary.json' && dirname(dst!) === dashDir), 'the dashboard is mounted where the provider reads');
  });

  it('the Tributary config it mounts loads, with the environment compose gives', async () => {
    await using dir = new TempDir();
    const t = compose.services.tributary!;
    const cfgMount = t.volumes!.map((v) => v.split(':')).find(([, dst]) => dst === '/etc/tributary/tributary.yaml')!;
    const token = dir.file('token', 'a'.repeat(32));
    const env = { ...Object.fromEntries(Object.entries(t.environment!).map(([k, v]) => [k, String(v).replace(/\$\{CDC_PASSWORD:-cdc\}/, 'cdc')])), TRIBUTARY_TOKEN_FILE: token, TRIBUTARY_STATE: dir.path, TRIBUTARY_OUT: dir.path };
    const cfg = await loadConfig([resolve(DEPLOY, cfgMount[0]!)], env);
    const p = cfg.pipelines[0]!.config;
    assert.equal(p.source.type, 'postgres');
    assert.equal(cfg.http.host, '0.0.0.0');
    assert.equal(cfg.http.port, 8083);
  });
});

describe('deploy/k8s', () => {
  const dir = join(DEPLOY, 'k8s');
  const files = readdirSync(dir).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml');
  const docs = files.flatMap((f) => YAML.parseAllDocuments(readFileSync(join(dir, f), 'utf8')).map((d) => ({ file: f, obj: d.toJS() as { apiVersion: string; kind: string; metadata: { name: string } } })));
  const models: Record<string, new (o: never) => { validate(): void }> = {
    'v1/ConfigMap': ConfigMap, 'v1/Secret': Secret, 'v1/Service': Service, 'apps/v1/StatefulSet': StatefulSet, 'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  };
  const find = <T>(kind: string) => docs.find((d) => d.obj.kind === kind)!.obj as unknown as T;

  it('every manifest passes the Kubernetes schema of its kind (kubernetes-models)', () => {
    assert.ok(docs.length >= 6);
    for (const { file, obj } of docs) {
      const Model = models[`${obj.apiVersion}/${obj.kind}`];
      assert.ok(Model, `${file}: ${obj.apiVersion} ${obj.kind} is a kind this test knows`);
      assert.doesNotThrow(() => new Model(obj as never).validate(), `${file}: ${obj.kind} ${obj.metadata?.name}`);
    }
    // And the validation does catch a wrong manifest.
    const bad = structuredClone(find<{ spec: { replicas: unknown } }>('StatefulSet'));
    bad.spec.replicas = 'one';
    assert.throws(() => new StatefulSet(bad as never).validate(), /replicas/);
  });

  it('kustomization.yaml lists every manifest but the example Secrets', () => {
    const k = YAML.parse(read('k8s', 'kustomization.yaml')) as { resources: string[] };
    assert.deepEqual([...k.resources].sort(), files.filter((f) => f !== 'secrets.example.yaml').sort());
  });

  type Container = {
    args: string[]; ports: { name: string; containerPort: number }[];
    livenessProbe: { httpGet: { path: string; port: string } }; readinessProbe: { httpGet: { path: string; port: string } };
    resources: { requests: { memory: string; cpu: string }; limits: { memory: string } };
    volumeMounts: { name: string; mountPath: string }[]; env?: unknown[];
  };
  type Sts = {
    spec: {
      replicas: number; serviceName: string; selector: { matchLabels: Record<string, string> };
      template: { metadata: { labels: Record<string, string> }; spec: { securityContext: { runAsNonRoot: boolean; fsGroup: number }; containers: Container[]; volumes: { name: string; configMap?: { name: string }; secret?: { secretName: string } }[] } };
      volumeClaimTemplates: { metadata: { name: string } }[];
    };
  };
  const mib = (q: string) => {
    const m = /^(\d+)(Mi|Gi)$/.exec(q);
    assert.ok(m, `quantity ${q}`);
    return Number(m[1]) * (m[2] === 'Gi' ? 1024 : 1);
  };

  it('the StatefulSet: one replica, state on a claim template, Secrets as files, probes, requests over the bench RSS, non-root', async () => {
    const sts = find<Sts>('StatefulSet');
    const pod = sts.spec.template.spec;
    const c = pod.containers[0]!;
    assert.equal(sts.spec.replicas, 1);
    assert.equal(c.livenessProbe.httpGet.path, '/healthz');
    assert.equal(c.readinessProbe.httpGet.path, '/readyz');
    assert.ok(c.ports.some((p) => p.name === c.readinessProbe.httpGet.port && p.containerPort === 8083));
    assert.ok(pod.securityContext.runAsNonRoot);
    // docs/benchmarks.md: peak RSS 172-186 MB; the request must cover it, the limit leave room.
    assert.ok(mib(c.resources.requests.memory) >= 200, 'memory request covers the bench peak RSS');
    assert.ok(mib(c.resources.limits.memory) >= 2 * mib(c.resources.requests.memory));
    assert.deepEqual(sts.spec.template.metadata.labels, sts.spec.selector.matchLabels);

    // The config the ConfigMap carries loads, and its state dir and secret files are where the pod mounts them.
    const cm = find<{ metadata: { name: string }; data: Record<string, string> }>('ConfigMap');
    const mountOf = (name: string) => c.volumeMounts.find((m) => m.name === name)?.mountPath;
    const volume = (pred: (v: Sts['spec']['template']['spec']['volumes'][number]) => boolean) => pod.volumes.find(pred)?.name;
    const cfgPath = c.args[c.args.indexOf('--config') + 1]!;
    assert.equal(dirname(cfgPath), mountOf(volume((v) => v.configMap?.name === cm.metadata.name)!));
    const text = cm.data[cfgPath.split('/').pop()!]!;
    assert.ok(text, 'the ConfigMap holds the file --config names');
    const secretsDoc = docs.filter((d) => d.obj.kind === 'Secret').map((d) => d.obj as unknown as { metadata: { name: string }; stringData: Record<string, string> });
    const claim = sts.spec.volumeClaimTemplates[0]!.metadata.name;
    const parsed = YAML.parse(text) as { state: { dir: string }; source: { password_file: string }; http: { auth_token_file: string } };
    assert.equal(parsed.state.dir, mountOf(claim), 'state.dir is the claim template\'s mount');
    for (const file of [parsed.source.password_file, parsed.http.auth_token_file]) {
      const secret = volume((v) => !!v.secret && file.startsWith(mountOf(v.name)! + '/'));
      assert.ok(secret, `${file} is mounted from a Secret`);
      const name = pod.volumes.find((v) => v.name === secret)!.secret!.secretName;
      const key = file.split('/').pop()!;
      assert.ok(secretsDoc.some((s) => s.metadata.name === name && key in s.stringData), `secrets.example.yaml shows ${name} with key ${key}`);
    }
    assert.doesNotMatch(text, /password:|auth_token:/, 'no secret inside the ConfigMap');
    // Load it as Tributary would, with the mounted files in a temp dir.
    await using tmp = new TempDir();
    const local = text
      .replace(parsed.source.password_file, tmp.file('password', 'pw'))
      .replace(parsed.http.auth_token_file, tmp.file('token', 'b'.repeat(32)))
      .replace(`dir: ${parsed.state.dir}`, `dir: ${tmp.path}`);
    const cfg = await loadConfig([tmp.file('tributary.yaml', local)], {});
    assert.equal(cfg.pipelines[0]!.config.name, 'shop');
  });

  it('the Service selects the pod and is the StatefulSet\'s; the PodDisruptionBudget covers it', () => {
    const sts = find<Sts>('StatefulSet');
    const svc = find<{ metadata: { name: string }; spec: { selector: Record<string, string>; ports: { targetPort: string }[] } }>('Service');
    const pdb = find<{ spec: { selector: { matchLabels: Record<string, string> }; minAvailable?: number; maxUnavailable?: number } }>('PodDisruptionBudget');
    assert.equal(sts.spec.serviceName, svc.metadata.name);
    assert.deepEqual(svc.spec.selector, sts.spec.template.metadata.labels);
    assert.equal(svc.spec.ports[0]!.targetPort, 'http');
    assert.deepEqual(pdb.spec.selector.matchLabels, sts.spec.template.metadata.labels);
  });
});

describe('Dockerfile', () => {
  const text = readFileSync(join(REPO, 'Dockerfile'), 'utf8');
  const stages = text.split(/^FROM /m).slice(1);
  const last = stages[stages.length - 1]!;

  it('the image ships the web console\'s built assets (console/dist) when the repository has them', (t) => {
    if (!existsSync(join(REPO, 'console', 'dist'))) {
      t.skip('no console/dist in this tree');
      return;
    }
    assert.match(last, /^COPY console\/dist \.\/console\/dist$/m);
  });

  it('the image runs as a non-root user, with a health check', () => {
    assert.match(last, /^USER node$/m);
    assert.match(last, /^HEALTHCHECK .*\/healthz/ms);
  });

  it('no dev dependencies or test/bench sources: node_modules from an --omit=dev install, dist from a build of src/connectors/sinks only', () => {
    assert.doesNotMatch(text, /COPY (test|bench)\b/);
    const nm = /COPY --from=(\w+) \/app\/node_modules/.exec(last);
    assert.ok(nm, 'node_modules come from a stage');
    const depsStage = stages.find((s) => s.includes(` AS ${nm[1]}`))!;
    assert.match(depsStage, /npm ci --omit=dev/);
    const build = JSON.parse(readFileSync(join(REPO, 'tsconfig.build.json'), 'utf8')) as { include: string[] };
    assert.deepEqual(build.include.sort(), ['connectors', 'sinks', 'src']);
    // Every package.json entry point is compiled by that build.
    const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { exports: Record<string, string> };
    for (const target of Object.values(pkg.exports)) assert.ok(build.include.some((d) => target.startsWith(`./dist/${d}/`)), target);
  });
});
