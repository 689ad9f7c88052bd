// Owns the hash-list page (admins): pick a list, add hex hashes, upload a file to hash, remove entries, delete.

import { api, qs } from './api.js';
import { clear, flash, h, replace } from './dom.js';

export function render(main, ctx) {
  let stopped = false;
  let selected = null;
  const names = h('ul', { id: 'hl-names', class: 'nav' });
  const detail = h('div', { id: 'hl-detail' });
  const name = h('input', { id: 'hl-name', size: 20, autocomplete: 'off', pattern: '[A-Za-z0-9_.-]{1,64}' });
  const kind = h('select', { id: 'hl-kind' }, h('option', { value: 'sha256' }, 'SHA-256'), h('option', { value: 'pdq' }, 'PDQ'));
  const values = h('textarea', { id: 'hl-values', rows: 3, spellcheck: 'false' });
  const file = h('input', { id: 'hl-file', type: 'file', accept: 'image/*,video/*' });
  const tenant = () => qs({ tenant: ctx.tenantParam() });
  const listName = () => (name.value.trim() || selected || '');

  async function loadNames() {
    try {
      const data = await api('GET', `/console/api/admin/hashlists${tenant()}`);
      if (stopped) return;
      replace(names, data.lists.length ? data.lists.map((n) => h('li', {}, h('button', { type: 'button',
        class: n === selected ? '' : 'secondary', onclick: () => { selected = n; name.value = n; loadNames(); loadList(); } }, n)))
        : h('li', {}, 'No hash lists yet: add hashes under a new name.'));
    } catch (e) { if (!stopped) flash(e.message, 'error'); }
  }

  async function loadList() {
    if (!selected) { clear(detail); return; }
    try {
      const data = await api('GET', `/console/api/admin/hashlists/${encodeURIComponent(selected)}${tenant()}`);
      if (stopped) return;
      const entries = [...(data.sha256 || []).map((v) => ['sha256', v]), ...(data.pdq || []).map((v) => ['pdq', v])];
      const removeBtn = h('button', { type: 'button', class: 'danger', id: 'hl-remove' }, 'Remove selected');
      removeBtn.addEventListener('click', async () => {
        const boxes = [...detail.querySelectorAll('input[type=checkbox]:checked')];
        for (const k of ['sha256', 'pdq']) {
          const vals = boxes.filter((b) => b.dataset.kind === k).map((b) => b.value);
          if (vals.length) {
            try {
              await api('POST', `/console/api/admin/hashlists/${encodeURIComponent(selected)}/hashes/remove${tenant()}`,
                { kind: k, values: vals });
            } catch (e) { flash(e.message, 'error'); return; }
          }
        }
        flash(`Removed ${boxes.length} hash(es).`, 'success');
        loadList();
      });
      const deleteBtn = h('button', { type: 'button', class: 'danger', id: 'hl-delete' }, `Delete list ${selected}`);
      deleteBtn.addEventListener('click', async () => {
        if (deleteBtn.dataset.confirm !== 'yes') { deleteBtn.dataset.confirm = 'yes'; deleteBtn.textContent = 'Click again to delete'; return; }
        try {
          await api('DELETE', `/console/api/admin/hashlists/${encodeURIComponent(selected)}${tenant()}`);
          flash(`Deleted list ${selected}.`, 'success');
          selected = null;
          loadNames();
          clear(detail);
        } catch (e) { flash(e.message, 'error'); }
      });
      replace(detail, h('h2', {}, `List ${selected}: ${entries.length} hash(es)`),
        h('ul', { class: 'queue', id: 'hl-entries' }, entries.map(([k, v]) => h('li', {},
          h('label', {}, h('input', { type: 'checkbox', value: v, dataset: { kind: k } }), ` ${k}`),
          h('span', { class: 'mono' }, v), h('span', {})))),
        h('div', { class: 'row' }, removeBtn, deleteBtn));
    } catch (e) { if (!stopped) flash(e.message, 'error'); }
  }

  async function addHex() {
    const n = listName();
    const vals = values.value.split(/\s+/).map((x) => x.trim()).filter(Boolean);
    if (!n || !vals.length) { flash('Give a list name and at least one hex hash.', 'error'); return; }
    try {
      const out = await api('POST', `/console/api/admin/hashlists/${encodeURIComponent(n)}/hashes${tenant()}`,
        { kind: kind.value, values: vals });
      flash(`Added ${out.added} hash(es) to ${n}.`, 'success');
      values.value = '';
      selected = n;
      loadNames();
      loadList();
    } catch (e) { flash(e.message, 'error'); }
  }

  async function waitJob(job) {
    for (let i = 0; i < 60 && job.status === 'queued' && !stopped; i += 1) {
      await new Promise((r) => setTimeout(r, 1000));
      job = await api('GET', `/console/api/admin/hashlists/jobs/${encodeURIComponent(job.id)}`);
    }
    return job;
  }

  async function upload() {
    const n = listName();
    if (!n || !file.files.length) { flash('Give a list name and choose a file.', 'error'); return; }
    const form = new FormData();
    form.append('file', file.files[0]);
    flash('Hashing the file on a media worker…');
    try {
      const job = await waitJob(await api('POST', `/console/api/admin/hashlists/${encodeURIComponent(n)}/file${tenant()}`,
        undefined, { form }));
      if (job.status === 'done') flash(`Added the file's hashes to ${n}.`, 'success');
      else flash(`Hashing ${job.status}: ${job.error || 'see the job'} (${job.id}).`, job.status === 'failed' ? 'error' : 'info');
      file.value = '';
      selected = n;
      loadNames();
      loadList();
    } catch (e) { flash(e.message, 'error'); }
  }

  const addBtn = h('button', { type: 'button', id: 'hl-add' }, 'Add hashes');
  addBtn.addEventListener('click', addHex);
  const upBtn = h('button', { type: 'button', id: 'hl-upload' }, 'Upload and hash');
  upBtn.addEventListener('click', upload);
  replace(main, h('h1', {}, 'Hash lists'),
    h('p', { class: 'muted' }, 'Media whose SHA-256 matches, or whose PDQ hash is close to, a listed hash is ' +
      'blocked before any model runs.'),
    names,
    h('section', { class: 'panel' }, h('h2', {}, 'Add to a list'),
      h('div', { class: 'filters' }, h('label', { for: 'hl-name' }, 'List name', name), h('label', { for: 'hl-kind' }, 'Kind', kind)),
      h('label', { for: 'hl-values' }, 'Hex hashes (64 hex characters each, one per line)'), values, addBtn,
      h('p', {}, h('label', { for: 'hl-file' }, 'Or upload an image or video to hash: '), file, ' ', upBtn)),
    detail);
  loadNames();
  return { cleanup() { stopped = true; } };
}
