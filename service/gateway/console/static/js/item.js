// Owns the item view: content, scores against thresholds, matches, appeal context, history and webhooks, the
// lease (claim, countdown, server-checked every few seconds) and the decision form with reason templates.

import { api } from './api.js';
import { badge, clear, flash, fmtAge, fmtScore, fmtTime, h, replace, table } from './dom.js';
import { highlightedText, imageView, videoView } from './media.js';

function scoresTable(item, policy) {
  const scores = item.scores || {};
  const cats = Object.keys({ ...scores }).sort((a, b) => (scores[b] || 0) - (scores[a] || 0));
  const rows = cats.map((c) => {
    const t = policy.thresholds[c] || {};
    const v = scores[c] || 0;
    const state = v >= t.block ? ['block', 'bad'] : v >= t.review ? ['review', 'warn'] : ['below', 'ok'];
    return [c, h('meter', { min: 0, max: 1, low: t.review, high: t.block, optimum: 0, value: v,
      'aria-label': `${c} score` }), fmtScore(v), fmtScore(t.review), fmtScore(t.block), badge(state[0], state[1])];
  });
  return table(['category', '', 'score', 'review at', 'block at', ''], rows, { id: 'scores' });
}

function appealBanner(appeal) {
  if (!appeal) return null;
  const o = appeal.original || {};
  const who = o.source === 'human' ? `${o.name || o.moderator} (moderator)` : `the model (policy ${o.policy_version})`;
  return h('div', { class: `banner ${appeal.excluded_me && appeal.open ? 'bad' : ''}`, id: 'appeal-banner' },
    h('strong', {}, appeal.open ? 'Appeal waiting for a decision' : 'Appealed earlier'),
    h('p', {}, 'Appeal message: ', h('q', {}, (appeal.request || {}).message || '')),
    h('p', {}, 'Original decision: ', h('strong', {}, o.decision || '–'), ' by ', who, ' at ', fmtTime(o.at),
      o.reason ? [' · reason: ', o.reason] : null),
    appeal.excluded_me && appeal.open ? h('p', { id: 'appeal-excluded' },
      'You made the original decision, so another moderator must decide this appeal.') : null);
}

export function render(main, ctx, itemId) {
  let data = null;
  let lease = null;
  let clockOffset = 0;
  let media = null;
  let timers = [];
  let stopped = false;
  const leaseBox = h('div', { id: 'lease', 'aria-live': 'polite' });
  const countdown = h('span', { class: 'lease', id: 'lease-countdown' });
  const decideBox = h('section', { class: 'panel decide', 'aria-labelledby': 'decide-title' });
  const reason = h('textarea', { id: 'reason', rows: 3, maxlength: 2000 });
  const buttons = {};

  const now = () => Date.now() / 1000 + clockOffset;
  const mine = () => lease && lease.mine && lease.expires_at && lease.expires_at > now();
  let lost = false;
  let drawn = '';

  function setLease(next) {
    lease = next;
    clockOffset = next.server_now - Date.now() / 1000;
    drawLease();
  }

  function drawLease() {
    if (!lease) return;
    const excluded = data.appeal && data.appeal.excluded_me && data.appeal.open;
    const live = mine();
    const sig = JSON.stringify([live, lost, lease.holder, lease.review_status, lease.expires_at, excluded]);
    if (sig !== drawn) {
      drawn = sig;
      const parts = [];
      if (lost) {
        parts.push(h('p', { class: 'lease expired', id: 'lease-expired' },
          'Your lease expired, so your decision can no longer be saved. Claim the item again to decide it.'));
      }
      if (live) parts.push(h('span', {}, 'You hold the lease: '), countdown);
      else if (lease.holder && !lease.mine) parts.push(h('span', { id: 'lease-other' }, `${lease.holder_name} is reviewing this item.`));
      else if (lease.review_status === 'pending' || lease.mine) {
        parts.push(h('span', {}, 'Waiting in the queue. '), excluded ? null :
          h('button', { type: 'button', id: 'claim', 'aria-keyshortcuts': 'c', onclick: claim }, 'Claim (c)'));
      } else parts.push(h('span', {}, `Not in review (${lease.review_status || 'never queued'}).`));
      replace(leaseBox, parts);
    }
    tick();
  }

  function tick() {
    const live = mine();
    if (lease && lease.mine && lease.expires_at) {
      const left = lease.expires_at - now();
      replace(countdown, `${fmtAge(Math.max(0, left))} left`);
      if (left <= 0 && !lost) { lost = true; drawLease(); }
    }
    for (const b of Object.values(buttons)) b.disabled = !live;
  }

  async function refreshLease() {
    try {
      const next = await api('GET', `/console/api/items/${encodeURIComponent(itemId)}/lease`, undefined,
        { poll: true });
      if (stopped) return;
      if (lease && lease.mine && !next.mine && !lost) {
        lost = true;
        flash(next.holder ? `Your lease expired and ${next.holder_name} claimed the item.` :
          'Your lease expired: the item went back to the queue.', 'error');
      }
      setLease(next);
    } catch (_) { /* the next poll tries again */ }
  }

  async function claim() {
    try {
      const next = await api('POST', `/console/api/reviews/${encodeURIComponent(itemId)}/claim`, {});
      lost = false;
      setLease(next);
      flash('Claimed: you hold the lease.', 'success');
    } catch (e) {
      flash(e.message, 'error');
      refreshLease();
    }
  }

  async function decide(action) {
    if (!mine()) {
      flash(lost ? 'Your lease expired, so this decision was not sent: claim the item again to decide it.'
        : 'Claim the item before deciding it.', 'error');
      return;
    }
    const categories = [...decideBox.querySelectorAll('input[name="cat"]:checked')].map((x) => x.value);
    try {
      await api('POST', `/console/api/reviews/${encodeURIComponent(itemId)}/decision`,
        { action, categories, reason: reason.value });
      const done = { approve: 'Approved', remove: 'Removed', escalate: 'Escalated' }[action];
      flash(`${done} ${itemId}.`, 'success');
      ctx.go(data.item.appeal ? '#/appeals' : '#/queue');
    } catch (e) {
      flash(e.message, 'error');
      if (e.code === 'lease_expired') {
        lost = true;
        setLease(e.details.lease || lease);
      }
    }
  }

  function decisionForm() {
    const cats = Object.keys(data.policy.thresholds).sort();
    const flagged = new Set(data.item.flagged || []);
    const templates = h('select', { id: 'template' }, h('option', { value: '' }, 'Choose a reason template…'),
      data.reason_templates.map((t, i) => h('option', { value: String(i) }, `${t.label} (${t.action})`)));
    templates.addEventListener('change', () => {
      const t = data.reason_templates[Number(templates.value)];
      if (!t) return;
      reason.value = t.label;
      for (const box of decideBox.querySelectorAll('input[name="cat"]')) box.checked = t.categories.includes(box.value);
    });
    buttons.approve = h('button', { type: 'button', class: 'approve', id: 'approve', 'aria-keyshortcuts': 'a',
      onclick: () => decide('approve') }, 'Approve (a)');
    buttons.remove = h('button', { type: 'button', class: 'remove', id: 'remove', 'aria-keyshortcuts': 'r',
      onclick: () => decide('remove') }, 'Remove (r)');
    buttons.escalate = h('button', { type: 'button', class: 'escalate', id: 'escalate', 'aria-keyshortcuts': 'e',
      onclick: () => decide('escalate') }, 'Escalate (e)');
    replace(decideBox, h('h2', { id: 'decide-title' }, 'Decision'),
      h('label', { for: 'template' }, 'Reason template'), templates,
      h('fieldset', { class: 'cats' }, h('legend', {}, 'Categories (for a removal)'),
        cats.map((c) => h('label', {}, h('input', { type: 'checkbox', name: 'cat', value: c,
          checked: flagged.has(c) ? true : null }), ` ${c}`))),
      h('label', { for: 'reason' }, 'Reason (free text, sent with the decision)'), reason,
      h('div', { class: 'buttons' }, buttons.approve, buttons.remove, buttons.escalate));
  }

  function content() {
    const it = data.item;
    if (it.kind === 'text') {
      const sentences = (it.explanation && it.explanation.top_sentences) || [];
      return [highlightedText(it.content || '', sentences, data.blocklist),
        h('p', { class: 'muted' }, sentences.length ? `${sentences.length} offending sentence(s) highlighted.` :
          'Short text: scored as a whole (no sentence explanation).')];
    }
    if (!data.blob) return h('p', {}, 'No stored file.');
    media = it.kind === 'image' ? imageView(data.blob, ctx.prefs.blur_media)
      : videoView(data.blob, it.media || {}, ctx.prefs.blur_media);
    return media.box;
  }

  function draw() {
    const it = data.item;
    const matches = data.hash_matches.map((m) => [m.list, m.hash_kind || '', m.distance, h('span', { class: 'mono' },
      m.list_hash || '')]);
    replace(main, 
      h('p', {}, h('a', { href: it.appeal ? '#/appeals' : '#/queue' }, '← Back to the queue (u)')),
      h('h1', {}, `Item ${it.id}`),
      h('div', { class: 'row' }, badge(it.kind), badge(it.status), it.decision ? badge(it.decision, it.decision) : null,
        badge(`source: ${it.source || '–'}`), it.escalated ? badge('escalated', 'warn') : null,
        h('span', { class: 'muted' }, `created ${fmtTime(it.created_at)} · policy ${it.policy_version || '–'}`)),
      appealBanner(data.appeal),
      h('div', { class: 'panel' }, leaseBox),
      h('div', { class: 'grid' },
        h('div', {},
          h('section', { class: 'panel', 'aria-labelledby': 'content-title' }, h('h2', { id: 'content-title' }, 'Content'),
            content()),
          h('section', { class: 'panel', 'aria-labelledby': 'meta-title' }, h('h2', { id: 'meta-title' }, 'Metadata'),
            h('p', {}, 'external id: ', it.external_id || '–'),
            h('pre', { id: 'metadata' }, JSON.stringify(it.metadata || {}, null, 2)))),
        h('div', {}, decideBox,
          h('section', { class: 'panel', 'aria-labelledby': 'scores-title' },
            h('h2', { id: 'scores-title' }, `Scores vs thresholds (${data.policy.id})`), scoresTable(it, data.policy)),
          h('section', { class: 'panel', 'aria-labelledby': 'hash-title' }, h('h2', { id: 'hash-title' }, 'Hash-list matches'),
            matches.length ? table(['list', 'kind', 'distance', 'hash'], matches, { id: 'hash-matches' })
              : h('p', {}, 'None.')))),
      h('section', { class: 'panel', 'aria-labelledby': 'history-title' }, h('h2', { id: 'history-title' }, 'History'),
        table(['time', 'event', 'status', 'details'], data.history.map((e) => [fmtTime(e.at), e.event, e.status || '',
          h('span', { class: 'mono' }, JSON.stringify(e.data || {}))]), { id: 'history' })),
      h('section', { class: 'panel', 'aria-labelledby': 'hooks-title' }, h('h2', { id: 'hooks-title' }, 'Webhooks sent'),
        data.webhooks.length ? table(['time', 'event', 'url', 'status', 'result'], data.webhooks.map((w) => [
          fmtTime(w.at), w.event || '', h('span', { class: 'mono' }, w.url || ''), w.status_code ?? '–',
          w.ok ? 'delivered' : (w.error || 'failed')]), { id: 'webhooks' }) : h('p', {}, 'None.')));
    decisionForm();
    drawLease();
  }

  async function load() {
    try {
      data = await api('GET', `/console/api/items/${encodeURIComponent(itemId)}`);
      if (stopped) return;
      clockOffset = data.lease.server_now - Date.now() / 1000;
      lease = data.lease;
      draw();
    } catch (e) {
      if (!stopped) replace(main, h('h1', {}, 'Item not available'), h('p', { class: 'error-text' }, e.message),
        h('p', {}, h('a', { href: '#/queue' }, 'Back to the queue')));
    }
  }

  function step(delta) {
    const ids = ctx.queueIds || [];
    const i = ids.indexOf(itemId);
    const next = ids[i < 0 ? 0 : i + delta];
    if (next) ctx.go(`#/item/${encodeURIComponent(next)}`);
  }

  load();
  timers = [setInterval(tick, 1000), setInterval(refreshLease, 3000)];
  return {
    cleanup() { stopped = true; timers.forEach(clearInterval); },
    onKey(key) {
      if (!data) return false;
      const actions = { a: 'approve', r: 'remove', e: 'escalate' };
      if (actions[key]) { decide(actions[key]); return true; }
      if (key === 'c' && lease && lease.review_status === 'pending') { claim(); return true; }
      if (key === 'v' && media) { media.toggle(); return true; }
      if (key === 'u' || key === 'Escape') { ctx.go(data.item.appeal ? '#/appeals' : '#/queue'); return true; }
      if (key === 'j') { step(1); return true; }
      if (key === 'k') { step(-1); return true; }
      return false;
    },
  };
}
