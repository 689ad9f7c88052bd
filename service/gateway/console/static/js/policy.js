// Owns the policy editor (admins): the tenant's thresholds (every kind, and per kind), extra blocklist terms and
// review_blocked; the server validates a change and lists what it would change before anything is saved.

import { api, qs } from './api.js';
import { clear, flash, h, replace, table } from './dom.js';

const KINDS = ['text', 'image', 'video'];

export function render(main, ctx) {
  let stopped = false;
  let current = null;
  const rows = h('tbody', { id: 'policy-rows' });
  // Per-kind sections: saved as `kinds.<kind>.categories`, they win over the rows above for that kind only.
  const kindRows = Object.fromEntries(KINDS.map((k) => [k, h('tbody', { id: `policy-rows-${k}` })]));
  const kindPick = Object.fromEntries(KINDS.map((k) => [k, h('select', { id: `policy-new-${k}` })]));
  const terms = h('textarea', { id: 'policy-terms', rows: 4 });
  const reviewBlocked = h('input', { type: 'checkbox', id: 'policy-review-blocked' });
  const newCat = h('input', { id: 'policy-new-cat', size: 16, autocomplete: 'off' });
  const result = h('div', { id: 'policy-result', 'aria-live': 'polite' });
  const tenant = () => qs({ tenant: ctx.tenantParam() });

  function row(cat, t, base, kind) {
    const label = kind ? `${kind} ${cat}` : cat;
    const review = h('input', { type: 'text', inputmode: 'decimal', size: 6, value: String(t.review),
      'aria-label': `${label} review threshold`, dataset: { cat, level: 'review' } });
    const block = h('input', { type: 'text', inputmode: 'decimal', size: 6, value: String(t.block),
      'aria-label': `${label} block threshold`, dataset: { cat, level: 'block' } });
    const tr = h('tr', { dataset: { cat } }, h('th', { scope: 'row' }, cat), h('td', {}, review), h('td', {}, block),
      h('td', { class: 'muted' }, base ? `${base.review} / ${base.block}` : 'not in the base policy'));
    if (kind) {
      const drop = h('button', { type: 'button', class: 'secondary', 'aria-label': `remove ${label}` }, 'Remove');
      drop.addEventListener('click', () => tr.remove());
      tr.append(h('td', {}, drop));
    }
    return tr;
  }

  function readRows(tbody, prefix, errors) {
    const out = {};
    for (const tr of tbody.children) {
      const cat = tr.dataset.cat;
      const spec = {};
      for (const input of tr.querySelectorAll('input')) {
        const text = input.value.trim();
        const value = Number(text);
        if (text === '' || !Number.isFinite(value)) errors.push(`${prefix}${cat}: ${input.dataset.level} must be a number`);
        spec[input.dataset.level] = value;
      }
      out[cat] = spec;
    }
    return out;
  }

  function collect() {
    const base = current.base_categories;
    const categories = {};
    const errors = [];
    for (const [cat, spec] of Object.entries(readRows(rows, '', errors))) {
      const b = base[cat];
      if (!b || b.review !== spec.review || b.block !== spec.block) categories[cat] = spec;
    }
    const kinds = {};
    for (const k of KINDS) {
      const cats = readRows(kindRows[k], `${k} `, errors);
      if (Object.keys(cats).length) kinds[k] = { categories: cats };
    }
    const list = terms.value.split('\n').map((x) => x.trim()).filter(Boolean);
    return { body: { categories, kinds, blocklist_terms: list, review_blocked: reviewBlocked.checked }, errors };
  }

  function showErrors(errors) {
    replace(result, h('div', { class: 'banner bad', role: 'alert', id: 'policy-errors' },
      h('strong', {}, 'This policy cannot be saved:'), h('ul', {}, errors.map((e) => h('li', {}, e)))));
  }

  async function preview() {
    const { body, errors } = collect();
    if (errors.length) { showErrors(errors); return; }
    try {
      const out = await api('POST', `/console/api/admin/policy/preview${tenant()}`, body);
      if (!out.valid) { showErrors(out.errors); return; }
      const save = h('button', { type: 'button', id: 'policy-save' }, 'Save this policy');
      save.addEventListener('click', () => saveIt(body));
      replace(result, h('h2', {}, 'Changes'), out.changes.length ? table(['setting', 'before', 'after'],
        out.changes.map((c) => [c.field, h('span', { class: 'before' }, c.before === null ? '–' : String(c.before)),
          h('span', { class: 'after' }, c.after === null ? '–' : String(c.after))]), { class: 'diff', id: 'policy-diff' })
        : h('p', {}, 'No changes.'), out.changes.length ? save : null);
      (out.changes.length ? save : result).focus();
    } catch (e) {
      showErrors([e.message]);
    }
  }

  async function saveIt(body) {
    try {
      const saved = await api('PUT', `/console/api/admin/policy${tenant()}`, body);
      flash(`Saved: new verdicts use policy ${saved.id}.`, 'success');
      load();
    } catch (e) {
      showErrors([e.message]);
    }
  }

  async function reset() {
    try {
      await api('DELETE', `/console/api/admin/policy${tenant()}`);
      flash('The tenant now uses the base policy.', 'success');
    } catch (e) {
      flash(e.code === 'policy_not_found' ? 'This tenant already uses the base policy.' : e.message, 'info');
    }
    load();
  }

  async function load() {
    try {
      const data = await api('GET', `/console/api/admin/policy${tenant()}`);
      if (stopped) return;
      current = data;
      const eff = data.effective;
      replace(rows, Object.entries(eff.categories).map(([c, t]) => row(c, t, data.base_categories[c])));
      for (const k of KINDS) {
        const own = (data.override_kinds[k] || {}).categories || {};
        const fileK = data.base_resolved[k].categories;
        replace(kindRows[k], Object.entries(own).map(([c, t]) => row(c, t, fileK[c], k)));
        replace(kindPick[k], Object.keys(fileK).map((c) => h('option', { value: c }, c)));
      }
      terms.value = data.override_blocklist_terms.join('\n');
      reviewBlocked.checked = !!eff.review_blocked;
      replace(document.getElementById('policy-id'), `Effective policy ${eff.id} (base ${data.base_id}). Later ` +
        `wins: ${eff.merge_order.join(' < ')}. Thresholds you set here apply over the base file's per-kind and ` +
        'per-language sections; a per-kind row applies to that kind only.');
      clear(result);
    } catch (e) {
      if (!stopped) flash(e.message, 'error');
    }
  }

  const addBtn = h('button', { type: 'button', class: 'secondary' }, 'Add category');
  addBtn.addEventListener('click', () => {
    const name = newCat.value.trim();
    if (!name || [...rows.children].some((r) => r.dataset.cat === name)) return;
    rows.append(row(name, current.effective.default_thresholds, null));
    newCat.value = '';
  });
  function kindPanel(k) {
    const add = h('button', { type: 'button', class: 'secondary' }, `Add ${k} category`);
    add.addEventListener('click', () => {
      const cat = kindPick[k].value;
      if (!cat || [...kindRows[k].children].some((r) => r.dataset.cat === cat)) return;
      kindRows[k].append(row(cat, current.effective.resolved[k].categories[cat],
        current.base_resolved[k].categories[cat], k));
    });
    return h('section', { class: 'panel' }, h('h2', {}, `Only for ${k}`),
      h('table', {}, h('thead', {}, h('tr', {}, ['category', 'review at', 'block at', 'file (review / block)', '']
        .map((x) => h('th', { scope: 'col' }, x)))), kindRows[k]),
      h('div', { class: 'row' }, h('label', { for: `policy-new-${k}` }, `${k} category`, kindPick[k]), add));
  }
  const previewBtn = h('button', { type: 'button', id: 'policy-preview' }, 'Review changes');
  previewBtn.addEventListener('click', preview);
  const resetBtn = h('button', { type: 'button', class: 'danger', id: 'policy-reset' }, 'Reset to base policy');
  resetBtn.addEventListener('click', reset);
  replace(main, h('h1', {}, 'Policy'), h('p', { id: 'policy-id', class: 'muted' }),
    h('section', { class: 'panel' }, h('h2', {}, 'Thresholds for every kind (0 ≤ review ≤ block ≤ 1)'),
      h('table', {}, h('thead', {}, h('tr', {}, ['category', 'review at', 'block at', 'base (review / block)']
        .map((x) => h('th', { scope: 'col' }, x)))), rows),
      h('div', { class: 'row' }, h('label', { for: 'policy-new-cat' }, 'New category', newCat), addBtn)),
    KINDS.map(kindPanel),
    h('section', { class: 'panel' }, h('h2', {}, 'Extra blocklist terms (one per line)'),
      h('label', { for: 'policy-terms', class: 'sr-only' }, 'Extra blocklist terms'), terms,
      h('p', {}, h('label', {}, reviewBlocked, ' Also send automated blocks to human review'))),
    h('div', { class: 'row' }, previewBtn, resetBtn), result);
  load();
  return { cleanup() { stopped = true; } };
}
