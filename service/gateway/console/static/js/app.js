// Owns the console shell: sign-in and sign-out, the hash router, the header, global keyboard shortcuts,
// preferences and (superadmins) the tenant picker. Views live in their own modules and return a cleanup.

import { api, ApiError, setAuthLost, setCsrf } from './api.js';
import { clear, flash, h, isTyping, replace } from './dom.js';
import * as queue from './queue.js';
import * as item from './item.js';
import * as dashboard from './dashboard.js';
import * as policy from './policy.js';
import * as lists from './lists.js';
import * as ops from './ops.js';

const main = document.getElementById('main');
const ctx = {
  user: null, prefs: { blur_media: true }, tenant: null, queueIds: [], view: null,
  go(hash) { if (location.hash === hash) route(); else location.hash = hash; },
};
let cleanup = null;

function tenantParam() { return ctx.user && ctx.user.superadmin ? ctx.tenant : null; }
ctx.tenantParam = tenantParam;

function showSignIn(message) {
  if (cleanup) { cleanup(); cleanup = null; }
  ctx.user = null;
  setCsrf(null);
  document.getElementById('top').hidden = true;
  const input = h('input', { id: 'signin-key', type: 'password', autocomplete: 'off', required: true,
    'aria-describedby': 'signin-help', spellcheck: 'false' });
  const error = h('p', { id: 'signin-error', class: 'error-text', role: 'alert' }, message || '');
  const form = h('form', { novalidate: true },
    h('label', { for: 'signin-key' }, 'API key'), input,
    h('p', { id: 'signin-help', class: 'muted' }, 'Paste a moderator or admin key. It is exchanged for a ' +
      'short session and is not kept in this browser.'),
    h('button', { type: 'submit' }, 'Sign in'), error);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const key = input.value.trim();
    input.value = '';
    if (!key) { replace(error, 'Enter an API key.'); input.focus(); return; }
    try {
      start(await api('POST', '/console/api/session', { key }, { quiet: true }));
    } catch (e) {
      replace(error, e instanceof ApiError ? e.message : 'Sign-in failed: the service did not answer.');
      input.focus();
    }
  });
  replace(main, h('section', { class: 'signin', 'aria-labelledby': 'signin-title' },
    h('h1', { id: 'signin-title' }, 'Sign in to the moderation console'), form));
  input.focus();
}

function start(session) {
  ctx.user = session.user;
  ctx.prefs = session.prefs;
  setCsrf(session.csrf_token);
  const top = document.getElementById('top');
  top.hidden = false;
  for (const el of top.querySelectorAll('[data-admin]')) el.hidden = !session.user.admin;
  const mins = Math.round(session.idle_timeout_s / 60);
  replace(document.getElementById('who'), `${session.user.name} · ${session.user.role}` +
    `${session.user.superadmin ? ' (all tenants)' : ` · ${session.user.tenant}`} · signs out after ${mins} min idle`);
  const pick = document.getElementById('tenant-pick');
  pick.hidden = !session.user.superadmin;
  const tenantInput = document.getElementById('tenant-input');
  tenantInput.value = ctx.tenant || session.user.tenant;
  ctx.tenant = tenantInput.value;
  document.getElementById('pref-blur').checked = !!ctx.prefs.blur_media;
  if (!location.hash || location.hash === '#' || location.hash === '#/signin') location.hash = '#/queue';
  else route();
}

function route() {
  if (!ctx.user) return;
  if (cleanup) { cleanup(); cleanup = null; }
  const hash = location.hash.replace(/^#\/?/, '') || 'queue';
  const [path, arg] = hash.startsWith('item/') ? ['item', decodeURIComponent(hash.slice(5))] : [hash, null];
  for (const a of document.querySelectorAll('[data-route]')) {
    if (a.dataset.route === path) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  clear(main);
  const views = {
    queue: () => queue.render(main, ctx, 'review'), appeals: () => queue.render(main, ctx, 'appeals'),
    item: () => item.render(main, ctx, arg), dashboard: () => dashboard.render(main, ctx),
    'admin/policy': () => policy.render(main, ctx), 'admin/hashlists': () => lists.render(main, ctx),
    'admin/rescans': () => ops.renderRescans(main, ctx), 'admin/keys': () => ops.renderKeys(main, ctx),
  };
  const view = views[path];
  if (!view) { replace(main, h('h1', {}, 'Not found'), h('p', {}, 'No such page.')); return; }
  if (path.startsWith('admin/') && !ctx.user.admin) {
    replace(main, h('h1', {}, 'Admins only'), h('p', {}, 'This page needs an admin key.'));
    return;
  }
  const handle = view();
  cleanup = handle.cleanup;
  ctx.view = handle;
  main.focus({ preventScroll: true });
}

async function signOut() {
  try { await api('POST', '/console/api/session/logout', {}); } catch (_) { /* signed out either way */ }
  location.hash = '#/signin';
  showSignIn('You signed out.');
}

document.addEventListener('keydown', (event) => {
  if (!ctx.user || event.ctrlKey || event.metaKey || event.altKey) return;
  if (isTyping(event)) return;
  if (document.querySelector('dialog[open]')) return;
  if (event.key === '?') { document.getElementById('help').showModal(); event.preventDefault(); return; }
  if (ctx.view && ctx.view.onKey && ctx.view.onKey(event.key, event)) event.preventDefault();
});

document.getElementById('help-btn').addEventListener('click', () => document.getElementById('help').showModal());
document.getElementById('prefs-btn').addEventListener('click', () => document.getElementById('prefs').showModal());
document.getElementById('signout').addEventListener('click', signOut);
document.getElementById('pref-blur').addEventListener('change', async (event) => {
  try {
    ctx.prefs = await api('PUT', '/console/api/prefs', { blur_media: event.target.checked });
    flash(ctx.prefs.blur_media ? 'Media will be blurred until revealed.' : 'Media will be shown unblurred.');
  } catch (e) { flash(e.message, 'error'); }
});
document.getElementById('tenant-input').addEventListener('change', (event) => {
  ctx.tenant = event.target.value.trim() || null;
  route();
});
window.addEventListener('hashchange', route);
setAuthLost((e) => {
  const why = e.code === 'session_revoked' ? 'The key behind your session was revoked.' :
    'Your session expired (idle too long or signed out elsewhere).';
  showSignIn(`${why} Sign in again.`);
});

(async () => {
  try {
    start(await api('GET', '/console/api/session', undefined, { quiet: true }));
  } catch (_) {
    showSignIn('');
  }
})();
