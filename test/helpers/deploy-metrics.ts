import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import { REPO } from './context.js';

/** Every `tributary_*` name in PromQL text, with the label names of the selector right after it. */
export function metricRefs(promql: string): { name: string; labels: string[] }[] {
  const out: { name: string; labels: string[] }[] = [];
  for (const m of promql.matchAll(/\b(tributary_[a-z0-9_]+)(\{([^}]*)\})?/g)) {
    const labels = [...(m[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)/g)].map((l) => l[1]!);
    out.push({ name: m[1]!, labels });
  }
  return out;
}

type Panel = { targets?: { expr: string }[]; panels?: Panel[] };

/** The PromQL of deploy/grafana/tributary.json (panel queries and variable definitions). */
export function dashboardExprs(): string[] {
  const dash = JSON.parse(readFileSync(join(REPO, 'deploy', 'grafana', 'tributary.json'), 'utf8')) as { panels: Panel[]; templating: { list: { definition?: string }[] } };
  const panels = dash.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
  return [...panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)), ...dash.templating.list.map((v) => v.definition ?? '').filter(Boolean)];
}

export type AlertRule = { alert: string; expr: string; for?: string; labels?: Record<string, string>; annotations?: Record<string, string> };

/** The rules of deploy/prometheus/alerts.yaml. */
export function alertRules(): AlertRule[] {
  const doc = YAML.parse(readFileSync(join(REPO, 'deploy', 'prometheus', 'alerts.yaml'), 'utf8')) as { groups: { rules: AlertRule[] }[] };
  return doc.groups.flatMap((g) => g.rules);
}

/** Every `tributary_*` metric name the dashboard and the alert rules use. */
export function deployMetricNames(): Set<string> {
  return new Set([...dashboardExprs(), ...alertRules().map((r) => r.expr)].flatMap((e) => metricRefs(e).map((r) => r.name)));
}
