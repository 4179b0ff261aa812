import type { DeliveryStream } from './delivery-stream.js';
import type { LeaseRow } from './leases-cli.js';
import { MiB } from './units.js';

/** What the page shows of one delivery stream. */
export interface StreamView {
  readonly stream: DeliveryStream;
  readonly bufferSizeBytes: number;
  /** Bytes delivered per sample interval, oldest first. */
  readonly throughput: readonly number[];
  readonly dlqDepth: number | undefined;
  readonly boardUrl: string | undefined;
}

export interface StatusView {
  readonly workerId: string;
  readonly now: number;
  readonly startedAt: number;
  readonly budget: { readonly held: number; readonly limit: number; readonly pausedMs: number };
  readonly streams: readonly StreamView[];
  /** Every shard lease, from Redis; undefined while Redis does not answer. */
  readonly leases: readonly LeaseRow[] | undefined;
  readonly sampleSeconds: number;
  readonly refreshSeconds: number;
}

const escape = (text: string) => text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const number = (n: number) => n.toLocaleString('en-US');

function bytes(n: number): string {
  if (n >= 1024 * MiB) return `${(n / (1024 * MiB)).toFixed(1)} GiB`;
  if (n >= MiB) return `${(n / MiB).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} B`;
}

function ago(ms: number): string {
  if (ms < 1_000) return 'just now';
  if (ms < 60_000) return `${Math.round(ms / 1000)} s ago`;
  if (ms < 3_600_000) return `${Math.round(ms / 60_000)} min ago`;
  return `${(ms / 3_600_000).toFixed(1)} h ago`;
}

function seconds(ms: number): string {
  return ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`;
}

function bar(fraction: number, label: string): string {
  const pct = Math.max(0, Math.min(100, fraction * 100));
  const tone = pct > 90 ? 'hot' : pct > 60 ? 'warm' : 'ok';
  return `<div class="bar" title="${escape(label)}"><div class="fill ${tone}" style="width:${pct.toFixed(1)}%"></div><span>${escape(label)}</span></div>`;
}

/** Delivered bytes per second over the window, as an SVG line (no script, no library). */
function sparkline(samples: readonly number[], sampleSeconds: number, slots: number): string {
  const width = 360;
  const height = 48;
  const rates = samples.map((b) => b / sampleSeconds);
  const max = Math.max(1, ...rates);
  const step = width / Math.max(1, slots - 1);
  const offset = slots - rates.length;
  const points = rates.map((r, i) => `${((offset + i) * step).toFixed(1)},${(height - 2 - (r / max) * (height - 6)).toFixed(1)}`).join(' ');
  const latest = rates.length > 0 ? rates[rates.length - 1]! : 0;
  return `<div class="spark"><svg viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="delivered bytes per second, last ${Math.round((slots * sampleSeconds) / 60)} minutes">
<line x1="0" y1="${height - 2}" x2="${width}" y2="${height - 2}" class="axis"/>${rates.length > 1 ? `<polyline points="${points}" class="line"/>` : ''}</svg>
<span class="spark-label">${rates.length === 0 ? `collecting: a sample every ${sampleSeconds} s` : `last ${bytes(latest)}/s · peak ${bytes(Math.max(...rates))}/s · ${Math.round((slots * sampleSeconds) / 60)} min`}</span></div>`;
}

function shardRows(view: StatusView, s: StreamView): string {
  const status = s.stream.source.status() as { shards?: Record<string, { iteratorAgeMs: number; millisBehindLatest: number }> };
  const local = status.shards ?? {};
  const leases = (view.leases ?? []).filter((l) => l.deliveryStream === s.stream.name);
  if (leases.length === 0 && Object.keys(local).length === 0) return '<p class="muted">No shard leases yet.</p>';
  const rows = (leases.length > 0 ? leases : Object.keys(local).map((shardId) => ({ shardId }) as Partial<LeaseRow> & { shardId: string })).map((l) => {
    const lag = local[l.shardId];
    const owner = l.owner === undefined ? view.workerId : l.owner;
    const mine = owner === view.workerId;
    const expired = l.expiresAt ? Date.parse(l.expiresAt) <= view.now : false;
    return `<tr class="${l.state === 'ended' ? 'ended' : ''}">
<td class="mono">${escape(l.shardId)}</td>
<td>${owner === null ? '<span class="muted">none</span>' : `${escape(owner)}${mine ? ' <span class="tag">this worker</span>' : ''}${expired ? ' <span class="tag warn">expired</span>' : ''}`}</td>
<td class="num">${l.epoch ?? ''}</td>
<td>${escape(l.state ?? 'open')}</td>
<td class="mono" title="${escape(l.checkpoint ?? '')}">${l.checkpoint ? escape(l.checkpoint === 'SHARD_END' ? 'SHARD_END' : `…${l.checkpoint.slice(-12)}`) : '<span class="muted">—</span>'}</td>
<td class="num">${lag ? seconds(lag.iteratorAgeMs) : '<span class="muted">—</span>'}</td>
<td class="num">${lag ? seconds(lag.millisBehindLatest) : '<span class="muted">—</span>'}</td>
</tr>`;
  });
  return `<table><thead><tr><th>shard</th><th>owner</th><th>epoch</th><th>state</th><th>checkpoint</th><th>iterator age</th><th>behind latest</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

function streamCard(view: StatusView, s: StreamView, slots: number): string {
  const { stream } = s;
  const stats = stream.stats;
  const buffers = stream.buffers;
  const last = stream.lastDelivery;
  const freshness = stream.dataFreshnessMs(view.now);
  const dlq = s.dlqDepth === undefined ? '<span class="muted">off</span>' : s.boardUrl ? `<a href="${escape(s.boardUrl)}">${number(s.dlqDepth)}</a>` : number(s.dlqDepth);
  return `<section class="card" data-stream="${escape(stream.name)}">
<header><h2>${escape(stream.name)}</h2><span class="muted">${escape(String((stream.source.status() as { source?: string }).source ?? stream.source.identity))}</span></header>
<div class="figures">
<div><span class="k">records read</span><span class="v" data-figure="records-read">${number(stats.recordsRead)}</span></div>
<div><span class="k">records delivered</span><span class="v" data-figure="records-delivered">${number(stats.recordsDelivered)}</span></div>
<div><span class="k">objects</span><span class="v" data-figure="objects-delivered">${number(stats.objectsDelivered)}</span></div>
<div><span class="k">DataFreshness</span><span class="v" data-figure="data-freshness">${seconds(freshness)}</span></div>
<div><span class="k">error output</span><span class="v ${stats.recordsToErrorOutput > 0 ? 'bad' : ''}" data-figure="error-output">${number(stats.recordsToErrorOutput)}</span></div>
<div><span class="k">dead-letter queue</span><span class="v ${s.dlqDepth ? 'bad' : ''}" data-figure="dlq">${dlq}</span></div>
</div>
<div class="row"><span class="k">buffer</span>${bar(buffers.bytes / s.bufferSizeBytes, `${bytes(buffers.bytes)} of ${bytes(s.bufferSizeBytes)} · ${number(buffers.records)} records · ${buffers.partitions} partition(s)`)}</div>
<div class="row"><span class="k">throughput</span>${sparkline(s.throughput, view.sampleSeconds, slots)}</div>
<div class="row"><span class="k">last delivery</span><span>${last ? `${ago(view.now - last.at)} — <span class="mono">${escape(last.location)}</span> (${number(last.records)} records, ${bytes(last.bytes)})` : '<span class="muted">none yet</span>'}</span></div>
${shardRows(view, s)}
</section>`;
}

/** The status page: server-rendered, refreshing itself, no script and no build step. */
export function renderStatusPage(view: StatusView): string {
  const slots = Math.round((15 * 60) / view.sampleSeconds);
  const { budget } = view;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="${view.refreshSeconds}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>firehose — ${escape(view.workerId)}</title>
<style>
:root { color-scheme: light; --fg:#1b1f24; --muted:#6a737d; --line:#e1e4e8; --bg:#f6f8fa; --ok:#2da44e; --warm:#d4a72c; --hot:#cf222e; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
.top { display:flex; gap:24px; align-items:center; padding:14px 24px; background:#fff; border-bottom:1px solid var(--line); flex-wrap: wrap; }
.top h1 { font-size:18px; margin:0; }
main { padding: 16px 24px; display:grid; gap:16px; }
.card { background:#fff; border:1px solid var(--line); border-radius:8px; padding:14px 18px; }
.card header { display:flex; gap:12px; align-items:baseline; }
.card h2 { margin:0 0 6px; font-size:16px; }
.figures { display:grid; grid-template-columns: repeat(6, minmax(110px, 1fr)); gap:8px; margin:8px 0 12px; }
.figures div { background: var(--bg); border-radius:6px; padding:6px 10px; }
.k { display:block; color: var(--muted); font-size:12px; min-width: 110px; }
.v { font-size:18px; font-variant-numeric: tabular-nums; }
.v.bad { color: var(--hot); }
.row { display:flex; gap:12px; align-items:center; margin:6px 0; }
.bar { position:relative; flex:1; max-width:520px; height:20px; background: var(--bg); border:1px solid var(--line); border-radius:4px; overflow:hidden; }
.bar .fill { height:100%; } .fill.ok { background:#a5d6a7; } .fill.warm { background:#ffe08a; } .fill.hot { background:#ffaba8; }
.bar span { position:absolute; left:8px; top:1px; font-size:12px; }
.spark { display:flex; gap:10px; align-items:center; } .spark .axis { stroke: var(--line); } .spark .line { fill:none; stroke:#0969da; stroke-width:1.5; }
.spark-label { color: var(--muted); font-size:12px; }
table { border-collapse: collapse; width:100%; margin-top:8px; }
th, td { text-align:left; padding:4px 10px; border-bottom:1px solid var(--line); }
th { color: var(--muted); font-weight:500; font-size:12px; }
td.num, th.num { text-align:right; font-variant-numeric: tabular-nums; }
.mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size:12px; }
tr.ended td { color: var(--muted); }
.tag { font-size:11px; background:#ddf4ff; color:#0969da; border-radius:10px; padding:0 6px; } .tag.warn { background:#fff1e5; color:#bc4c00; }
.muted { color: var(--muted); }
a { color:#0969da; }
</style></head>
<body>
<div class="top"><h1>firehose</h1>
<span>worker <b class="mono">${escape(view.workerId)}</b></span>
<span>up ${seconds(view.now - view.startedAt).replace(' s', '')} s</span>
<span style="flex:1; max-width:420px">${bar(budget.held / budget.limit, `memory budget ${bytes(budget.held)} of ${bytes(budget.limit)}`)}</span>
<span class="muted">readers paused ${seconds(budget.pausedMs)} in all</span>
<span class="muted">${view.leases === undefined ? 'Redis is not answering: leases unknown' : `${view.leases.filter((l) => l.state === 'open').length} open shard leases`}</span>
<span class="muted"><a href="/metrics">metrics</a> · <a href="/stats">stats</a> · <a href="/leases">leases</a>${view.streams.some((s) => s.boardUrl) ? ' · <a href="/admin/queues">dead letters</a>' : ''}</span>
</div>
<main>
${view.streams.map((s) => streamCard(view, s, slots)).join('\n')}
</main>
<p class="muted" style="padding:0 24px 16px">Refreshes every ${view.refreshSeconds} s · ${escape(new Date(view.now).toISOString())}</p>
</body></html>
`;
}
