// Owns the rescan page (start with filters, progress, ETA, cancel; polled) and the API-key page (create, list,
// revoke). A created key is shown once, in the page, and never stored.

import { api, qs } from './api.js';
import { clear, flash, fmtAge, fmtTime, h, replace, table } from './dom.js';

function sel(id, options) {
  return h('select', { id }, options.map(([v, l]) => h('option', { value: v }, l)));
}

export function renderRescans(main, ctx) {
  let stopped = false;
  const jobs = h('div', { id: 'rescan-jobs' });
  const kind = sel('rs-kind', [['', 'all kinds'], ['text', 'text'], ['image', 'image'], ['video', 'video']]);
  const decision = sel('rs-decision', [['', 'any decision'], ['allow', 'allow'], ['review', 'review'], ['block', 'block']]);
  const since = h('input', { id: 'rs-since', type: 'datetime-local' });
  const until = h('input', { id: 'rs-until', type: 'datetime-local' });
  const policyNot = h('input', { id: 'rs-policy-not', size: 24, autocomplete: 'off' });
  const modelNot = h('input', { id: 'rs-model-not', size: 24, autocomplete: 'off' });
  const limit = h('input', { id: 'rs-limit', type: 'number', min: 1, step: 1 });
  const tenant = () => qs({ tenant: ctx.tenantParam() });

  async function cancel(id) {
    try {
      await api('POST', `/console/api/admin/rescans/${encodeURIComponent(id)}/cancel`, {});
      flash(`Cancelled ${id}.`, 'success');
    } catch (e) {
      flash(e.code === 'rescan_finished' ? 'That rescan already finished.' : e.message, 'error');
    }
    load();
  }

  async function load(poll = false) {
    try {
      const data = await api('GET', `/console/api/admin/rescans${tenant()}`, undefined, { poll });
      if (stopped) return;
      replace(jobs, data.items.length ? table(['job', 'status', 'progress', 'changed / unchanged / failed / skipped',
        'rate', 'ETA', 'started', ''], data.items.map((j) => {
        const live = j.status === 'planning' || j.status === 'running';
        return [h('span', { class: 'mono' }, j.id), h('span', { dataset: { status: j.status } }, j.status),
          h('span', {}, h('progress', { max: Math.max(1, j.total), value: j.done, 'aria-label': `${j.id} progress` }),
            ` ${j.done} / ${j.total}`),
          `${j.changed} / ${j.unchanged} / ${j.failed} / ${j.skipped}`, `${j.rate_per_s}/s`,
          j.eta_s === null ? '–' : fmtAge(j.eta_s), fmtTime(j.started_at),
          live ? h('button', { type: 'button', class: 'danger', onclick: () => cancel(j.id), dataset: { cancel: j.id } },
            'Cancel') : ''];
      }), { id: 'rescan-table' }) : h('p', {}, 'No rescans yet.'));
    } catch (e) { if (!stopped) flash(e.message, 'error'); }
  }

  async function startJob() {
    const body = {};
    if (kind.value) body.kind = kind.value;
    if (decision.value) body.decision = decision.value;
    if (since.value) body.since = new Date(since.value).getTime() / 1000;
    if (until.value) body.until = new Date(until.value).getTime() / 1000;
    if (policyNot.value.trim()) body.policy_version_not = policyNot.value.trim();
    if (modelNot.value.trim()) body.model_version_not = modelNot.value.trim();
    if (limit.value) body.limit = Number(limit.value);
    try {
      const job = await api('POST', `/console/api/admin/rescans${tenant()}`, body);
      flash(`Started rescan ${job.id}.`, 'success');
      load();
    } catch (e) { flash(e.message, 'error'); }
  }

  const startBtn = h('button', { type: 'button', id: 'rs-start' }, 'Start rescan');
  startBtn.addEventListener('click', startJob);
  replace(main, h('h1', {}, 'Rescans'),
    h('p', { class: 'muted' }, 'Re-evaluate stored items with the current model and policy. Human decisions stand.'),
    h('section', { class: 'panel' }, h('h2', {}, 'Start a rescan of this tenant'),
      h('div', { class: 'filters' }, h('label', { for: 'rs-kind' }, 'Kind', kind),
        h('label', { for: 'rs-decision' }, 'Current decision', decision), h('label', { for: 'rs-since' }, 'Created after', since),
        h('label', { for: 'rs-until' }, 'Created before', until),
        h('label', { for: 'rs-policy-not' }, 'Skip items decided under policy', policyNot),
        h('label', { for: 'rs-model-not' }, 'Skip items scored by model', modelNot),
        h('label', { for: 'rs-limit' }, 'At most', limit), startBtn)),
    h('h2', {}, 'Jobs'), jobs);
  load();
  const timer = setInterval(() => load(true), 2000);
  return { cleanup() { stopped = true; clearInterval(timer); } };
}

export function renderKeys(main, ctx) {
  let stopped = false;
  const list = h('div', { id: 'keys-list' });
  const shown = h('div', { id: 'key-created', 'aria-live': 'polite' });
  const roles = [['moderator', 'moderator'], ['platform', 'platform']];
  if (ctx.user.superadmin) roles.push(['admin', 'admin'], ['superadmin', 'superadmin']);
  const role = sel('key-role', roles);
  const name = h('input', { id: 'key-name', size: 24, maxlength: 128, autocomplete: 'off' });
  const tenant = () => qs({ tenant: ctx.tenantParam() });

  async function revoke(button, keyId) {
    if (button.dataset.confirm !== 'yes') {
      button.dataset.confirm = 'yes';
      button.textContent = `Confirm: revoke ${keyId}`;
      return;
    }
    try {
      await api('DELETE', `/console/api/admin/keys/${encodeURIComponent(keyId)}`);
      flash(`Revoked ${keyId}.`, 'success');
    } catch (e) { flash(e.message, 'error'); }
    load();
  }

  async function load() {
    try {
      const data = await api('GET', `/console/api/admin/keys${tenant()}`);
      if (stopped) return;
      replace(list, table(['key id', 'tenant', 'role', 'name', 'created', ''], data.items.map((k) => {
        const b = h('button', { type: 'button', class: 'danger', dataset: { revoke: k.key_id } }, 'Revoke');
        b.addEventListener('click', () => revoke(b, k.key_id));
        return [h('span', { class: 'mono' }, k.key_id), k.tenant, k.role, k.name, fmtTime(k.created_at),
          k.key_id === ctx.user.key_id ? 'this session' : b];
      }), { id: 'keys-table' }));
    } catch (e) { if (!stopped) flash(e.message, 'error'); }
  }

  async function create() {
    try {
      const out = await api('POST', `/console/api/admin/keys${tenant()}`, { role: role.value, name: name.value.trim() });
      const copy = h('button', { type: 'button', class: 'secondary' }, 'Copy');
      copy.addEventListener('click', () => navigator.clipboard && navigator.clipboard.writeText(out.key));
      replace(shown, h('div', { class: 'banner' }, h('p', {}, `New ${out.role} key for ${out.tenant} (${out.key_id}). `,
        'Copy it now: it is shown only once and is not stored in this browser.'),
        h('code', { class: 'secret', id: 'new-key' }, out.key), copy));
      name.value = '';
      load();
    } catch (e) { flash(e.message, 'error'); }
  }

  const createBtn = h('button', { type: 'button', id: 'key-create' }, 'Create key');
  createBtn.addEventListener('click', create);
  replace(main, h('h1', {}, 'API keys'),
    h('section', { class: 'panel' }, h('h2', {}, 'Create a key'),
      h('div', { class: 'filters' }, h('label', { for: 'key-role' }, 'Role', role), h('label', { for: 'key-name' }, 'Name', name),
        createBtn), shown),
    list);
  load();
  return { cleanup() { stopped = true; clear(shown); } };
}
