// Owns the queue and appeals views: filters, live counts (polled), keyboard selection and "claim next".

import { api, qs } from './api.js';
import { badge, clear, flash, fmtAge, fmtScore, h, replace } from './dom.js';

const AGES = [['', 'any age'], ['300', 'older than 5 min'], ['3600', 'older than 1 h'], ['86400', 'older than 24 h']];
const filters = { review: {}, appeals: {} };

function option(value, label, selected) {
  return h('option', { value, selected: selected ? true : null }, label);
}

export function render(main, ctx, view) {
  const f = filters[view];
  const title = view === 'appeals' ? 'Appeals' : 'Review queue';
  const counts = h('div', { class: 'counts', id: 'queue-counts' });
  const list = h('ul', { class: 'queue', id: 'queue-list', role: 'listbox', 'aria-label': `${title} items` });
  const mine = h('div', { id: 'queue-mine' });
  const kind = h('select', { id: 'f-kind' }, option('', 'all kinds', !f.kind),
    ['text', 'image', 'video'].map((k) => option(k, k, f.kind === k)));
  const category = h('select', { id: 'f-category' }, option('', 'all categories', !f.category));
  const age = h('select', { id: 'f-age' }, AGES.map(([v, l]) => option(v, l, (f.min_age_s || '') === v)));
  const claimBtn = h('button', { type: 'button', id: 'claim-next', 'aria-keyshortcuts': 'c' }, 'Claim next (c)');
  let items = [];
  let selected = 0;
  let timer = null;
  let stopped = false;

  function params() {
    return { view, kind: f.kind, category: f.category, min_age_s: f.min_age_s, tenant: ctx.tenantParam() };
  }

  function select(i, focus = true) {
    if (!items.length) return;
    selected = Math.max(0, Math.min(items.length - 1, i));
    for (const [n, li] of [...list.children].entries()) li.setAttribute('aria-selected', String(n === selected));
    const li = list.children[selected];
    if (li && focus) { li.focus(); li.scrollIntoView({ block: 'nearest' }); }
  }

  function card(it) {
    const bits = [badge(it.kind), it.decision ? badge(it.decision, it.decision) : null,
      it.escalated ? badge('escalated', 'warn') : null, it.appeal ? badge('appeal', 'warn') : null,
      it.decided_by_me ? badge('you decided this: another moderator must', 'bad') : null];
    return h('li', { role: 'option', tabindex: '-1', 'aria-selected': 'false', dataset: { id: it.id } },
      h('div', {}, h('a', { href: `#/item/${encodeURIComponent(it.id)}` }, it.id.slice(0, 16)),
        h('div', { class: 'muted' }, fmtAge(Date.now() / 1000 - it.created_at))),
      h('div', {}, h('div', { class: 'row' }, bits),
        h('div', { class: 'excerpt' }, it.excerpt || (it.kind === 'text' ? '(empty text)' : `(${it.kind})`)),
        it.external_id ? h('div', { class: 'muted' }, 'external id: ', it.external_id) : null),
      h('div', {}, h('div', {}, (it.flagged || []).join(', ') || 'no category'),
        h('div', { class: 'muted' }, 'max score ', fmtScore(it.max_score))));
  }

  async function load(poll = false) {
    try {
      const data = await api('GET', `/console/api/queue${qs(params())}`, undefined, { poll });
      if (stopped) return;
      const c = data.counts;
      replace(counts,
        h('span', {}, h('strong', { id: 'count-matching' }, c.matching), ' matching'),
        h('span', {}, h('strong', { id: 'count-review' }, c.review), ' first reviews'),
        h('span', {}, h('strong', { id: 'count-appeals' }, c.appeals), ' appeals'),
        h('span', {}, h('strong', { id: 'count-claimed' }, c.claimed), ' claimed'),
        h('span', {}, 'oldest ', h('strong', {}, fmtAge(c.oldest_age_s))),
        h('span', { class: 'muted' }, Object.entries(c.by_kind).map(([k, n]) => `${k} ${n}`).join(' · ')));
      const cats = Object.keys(c.by_category).sort();
      if (f.category && !cats.includes(f.category)) cats.push(f.category);
      replace(category, option('', 'all categories', !f.category),
        cats.map((x) => option(x, `${x} (${c.by_category[x] || 0})`, f.category === x)));
      const keepId = items[selected] && items[selected].id;
      items = data.items;
      ctx.queueIds = items.map((x) => x.id);
      replace(list, items.length ? items.map(card) : h('li', {}, 'Nothing waiting with these filters.'));
      const again = items.findIndex((x) => x.id === keepId);
      select(again >= 0 ? again : Math.min(selected, items.length - 1), list.contains(document.activeElement));
      replace(mine, data.mine.length ? h('div', { class: 'panel' }, h('h2', {}, 'Claimed by you'),
        h('ul', {}, data.mine.map((it) => h('li', {}, h('a', { href: `#/item/${encodeURIComponent(it.id)}` }, it.id),
          ' ', it.kind, ' ', it.excerpt.slice(0, 80))))) : '');
    } catch (e) {
      if (!stopped && e.status !== 401) flash(`Could not load the queue: ${e.message}`, 'error');
    }
  }

  async function claimNext() {
    try {
      const lease = await api('POST', '/console/api/queue/claim-next', params());
      ctx.go(`#/item/${encodeURIComponent(lease.id)}`);
    } catch (e) {
      flash(e.code === 'queue_empty' ? 'Nothing left to claim with these filters.' : e.message,
        e.code === 'queue_empty' ? 'info' : 'error');
    }
  }

  function onFilter() {
    f.kind = kind.value || null;
    f.category = category.value || null;
    f.min_age_s = age.value || null;
    load();
  }

  kind.addEventListener('change', onFilter);
  category.addEventListener('change', onFilter);
  age.addEventListener('change', onFilter);
  claimBtn.addEventListener('click', claimNext);
  list.addEventListener('click', (event) => {
    const li = event.target.closest('li[data-id]');
    if (li) select([...list.children].indexOf(li), false);
  });
  list.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && items[selected]) ctx.go(`#/item/${encodeURIComponent(items[selected].id)}`);
  });

  replace(main, 
    h('h1', {}, title), counts,
    h('div', { class: 'filters', role: 'group', 'aria-label': 'Filters' },
      h('label', { for: 'f-kind' }, 'Kind', kind), h('label', { for: 'f-category' }, 'Category', category),
      h('label', { for: 'f-age' }, 'Age', age), claimBtn),
    mine, list);
  load();
  timer = setInterval(() => load(true), 5000);
  return {
    cleanup() { stopped = true; clearInterval(timer); },
    onKey(key) {
      if (key === 'j') { select(selected + 1); return true; }
      if (key === 'k') { select(selected - 1); return true; }
      if ((key === 'Enter' || key === 'o') && items[selected]) {
        ctx.go(`#/item/${encodeURIComponent(items[selected].id)}`);
        return true;
      }
      if (key === 'c') { claimNext(); return true; }
      return false;
    },
  };
}
