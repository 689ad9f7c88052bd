// Owns the operations dashboard: the /console/api/stats/overview series drawn with the locally served Chart.js,
// each chart followed by its data as a table (screen readers, copy-paste), refreshed every 30 seconds.

import { api, qs } from './api.js';
import { clear, flash, fmtAge, fmtPct, h, replace, table } from './dom.js';

const PALETTE = ['#174f8a', '#a3191c', '#1c6b32', '#7a4a00', '#5b2a86', '#00687a', '#8a3b00', '#4a5360'];
const SPANS = { hour: [['24', 'last 24 hours'], ['48', 'last 48 hours'], ['192', 'last 8 days']],
  day: [['14', 'last 14 days'], ['30', 'last 30 days'], ['90', 'last 90 days']] };

function label(start, resolution) {
  const d = new Date(start * 1000);
  const p = (n) => String(n).padStart(2, '0');
  return resolution === 'hour' ? `${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}h`
    : `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
}

function card(title, value, id) {
  return h('div', { class: 'card' }, h('div', { class: 'muted' }, title), h('div', { class: 'value', id }, value));
}

export function render(main, ctx) {
  const charts = [];
  let timer = null;
  let stopped = false;
  const state = { resolution: 'hour', buckets: '48' };
  const resSel = h('select', { id: 'd-res' }, h('option', { value: 'hour' }, 'hourly'), h('option', { value: 'day' }, 'daily'));
  const spanSel = h('select', { id: 'd-span' });
  const body = h('div', { id: 'dash-body' });

  function fillSpans() {
    replace(spanSel, SPANS[state.resolution].map(([v, l]) => h('option', { value: v, selected: v === state.buckets ? true : null }, l)));
  }

  function chart(id, title, type, labels, datasets, opts = {}, rows = null) {
    const canvas = h('canvas', { id, role: 'img', 'aria-label': title });
    const headers = ['bucket', ...datasets.map((d) => d.label)];
    const data = rows || labels.map((l, i) => [l, ...datasets.map((d) => (d.data[i] ?? '–'))]);
    const box = h('figure', { class: 'chart' }, h('figcaption', {}, h('strong', {}, title)),
      h('div', { class: 'canvas-box' }, canvas),
      h('details', {}, h('summary', {}, 'Data table'), table(headers, data)));
    if (window.Chart) {
      const c = new window.Chart(canvas, {
        type, data: { labels, datasets: datasets.map((d, i) => ({ borderColor: PALETTE[i % 8],
          backgroundColor: PALETTE[i % 8], borderWidth: 2, pointRadius: 2, ...d })) },
        options: { responsive: true, maintainAspectRatio: false, animation: false,
          interaction: { mode: 'index', intersect: false }, plugins: { legend: { position: 'bottom' } }, ...opts },
      });
      charts.push(c);
    }
    return box;
  }

  function draw(d) {
    const res = d.resolution;
    const vol = d.volume.buckets;
    const labels = vol.map((b) => label(b.start, res));
    const kinds = ['text', 'image', 'video'];
    const stacked = { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } } };
    const pct = { scales: { y: { beginAtZero: true, max: 1, ticks: { callback: (v) => `${Math.round(v * 100)}%` } } } };
    const cats = [...new Set(vol.flatMap((b) => Object.values(b.flagged_categories).flatMap(Object.keys)))].sort();
    const rev = d.review.buckets;
    const mods = d.review.moderators;
    const totals = d.review.totals;
    const q = d.queue;
    const w = d.workers.summary;
    const sum = (xs) => xs.reduce((a, b) => a + b, 0);
    const versions = d.versions;
    replace(body, 
      h('div', { class: 'cards' },
        card('Submissions in range', sum(vol.map((b) => b.submitted_total)), 'card-submitted'),
        card('Verdicts in range', sum(vol.map((b) => b.verdicts_total)), 'card-verdicts'),
        card('Queue depth now', q ? q.depth : 'pick a tenant', 'card-depth'),
        card('Claimed now', q ? q.claimed : '–', 'card-claimed'),
        card('Appeals waiting', q ? q.appeals : '–', 'card-appeals'),
        card('Oldest in queue', q ? fmtAge(q.age_s.oldest) : '–', 'card-oldest'),
        card('Median time to decision', totals.median_time_to_decision_s === null ? '–'
          : fmtAge(totals.median_time_to_decision_s), 'card-ttd'),
        card('Overturn rate on appeal', fmtPct(totals.appeals.overturn_rate), 'card-overturn'),
        card('Workers healthy', `${w.healthy} / ${w.live}`, 'card-workers'),
        card('Policy now', versions.current.policy || '–', 'card-policy')),
      h('div', { class: 'charts' },
        chart('c-submissions', 'Submissions by kind', 'bar', labels,
          kinds.map((k) => ({ label: k, data: vol.map((b) => b.submitted[k] || 0) })), stacked),
        chart('c-rates', 'Flag rate (review or block) and block rate', 'line', labels, [
          { label: 'flag rate', data: vol.map((b) => b.flag_rate.all) },
          { label: 'block rate', data: vol.map((b) => b.block_rate.all) },
          ...kinds.map((k) => ({ label: `flag rate ${k}`, data: vol.map((b) => b.flag_rate[k]), borderDash: [4, 3] }))],
          pct),
        chart('c-categories', 'Flagged verdicts by category', 'bar', labels,
          cats.map((c) => ({ label: c, data: vol.map((b) => sum(kinds.map((k) => (b.flagged_categories[k] || {})[c] || 0))) })),
          stacked),
        chart('c-flow', 'Review queue: entered, decided, deepest', 'bar', labels, [
          { label: 'entered review', data: rev.map((b) => b.entered_review) },
          { label: 'decided', data: rev.map((b) => b.decided) },
          { label: 'deepest queue', data: rev.map((b) => b.queue_max_depth), type: 'line' }]),
        chart('c-moderators', 'Decisions per moderator (range)', 'bar', Object.keys(totals.decisions_per_moderator)
          .map((m) => mods[m] || m), ['approve', 'remove', 'escalate'].map((a) => ({ label: a,
          data: Object.values(totals.decisions_per_moderator).map((x) => x[a]) })), { indexAxis: 'y', ...stacked }),
        chart('c-ttd', 'Median time to decision (seconds)', 'line', labels,
          [{ label: 'median seconds', data: rev.map((b) => b.median_time_to_decision_s) }],
          { scales: { y: { beginAtZero: true } }, spanGaps: true }),
        chart('c-appeals', 'Appeals and overturn rate', 'bar', labels, [
          { label: 'appeals opened', data: rev.map((b) => b.appeals.opened) },
          { label: 'appeals decided', data: rev.map((b) => b.appeals.decided) },
          { label: 'overturned', data: rev.map((b) => b.appeals.overturned) }]),
        q ? chart('c-age', 'Queue age now', 'bar', ['< 1 h', '1–24 h', '> 24 h'],
          [{ label: 'items', data: [q.age_s.buckets.lt_1h, q.age_s.buckets['1h_24h'], q.age_s.buckets.gt_24h] }]) : null),
      h('h2', {}, 'Model and policy versions in use'),
      table(['version', 'verdicts in range'], [
        ...Object.entries(versions.totals.models).map(([k, n]) => [`model ${k}`, n]),
        ...Object.entries(versions.totals.policies).map(([k, n]) => [`policy ${k}`, n]),
        ...versions.current.worker_models.map((m) => [`loaded by a worker now: ${m}`, '–'])], { id: 'versions' }),
      h('h2', {}, 'Worker health'),
      d.workers.workers ? table(['worker', 'queues', 'heartbeat', 'models', 'health'], d.workers.workers.map((x) => [
        `${x.hostname} (pid ${x.pid})`, x.queues.join(', '), `${x.heartbeat_age_s}s ago`,
        Object.entries(x.models).map(([n, m]) => `${n}: ${m.ok ? m.model : `down (${m.error || '?'})`}`).join('; '),
        x.healthy ? 'healthy' : 'unhealthy']), { id: 'workers' })
        : h('p', {}, `${w.live} worker(s) live, ${w.healthy} healthy. `,
          Object.entries(w.by_queue).map(([k, n]) => `${k}: ${n}`).join(' · ')));
  }

  async function load(poll = false) {
    try {
      const d = await api('GET', `/console/api/stats/overview${qs({ resolution: state.resolution,
        buckets: state.buckets, tenant: ctx.tenantParam() })}`, undefined, { poll });
      if (stopped) return;
      charts.splice(0).forEach((c) => c.destroy());
      draw(d);
      body.dataset.loaded = 'true';
    } catch (e) {
      if (!stopped && e.status !== 401) flash(`Could not load the dashboard: ${e.message}`, 'error');
    }
  }

  resSel.addEventListener('change', () => {
    state.resolution = resSel.value;
    state.buckets = SPANS[state.resolution][0][0];
    fillSpans();
    load();
  });
  spanSel.addEventListener('change', () => { state.buckets = spanSel.value; load(); });
  fillSpans();
  replace(main, h('h1', {}, 'Operations dashboard'),
    h('div', { class: 'filters' }, h('label', { for: 'd-res' }, 'Buckets', resSel),
      h('label', { for: 'd-span' }, 'Range', spanSel),
      h('span', { class: 'muted' }, 'The same series: GET /v1/stats/volume, /review, /queue, /versions, /workers.')),
    body);
  load();
  timer = setInterval(() => load(true), 30000);
  return { cleanup() { stopped = true; clearInterval(timer); charts.forEach((c) => c.destroy()); } };
}
