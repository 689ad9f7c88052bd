// Owns DOM building and formatting for the console. Every value lands as a text node or an attribute set by
// setAttribute, never parsed from HTML strings, so submitted text, metadata and names render inert.

const SVG = 'http://www.w3.org/2000/svg';

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function build(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'value' && 'value' in el) el.value = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  return el;
}

export function h(tag, attrs, ...children) {
  return append(build(document.createElement(tag), attrs), children);
}

export function s(tag, attrs, ...children) {
  return append(build(document.createElementNS(SVG, tag), attrs), children);
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function replace(el, ...children) {
  return append(clear(el), children);
}

export function fmtAge(seconds) {
  if (seconds === null || seconds === undefined) return '–';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

export function fmtTime(ts) {
  if (!ts) return '–';
  const d = new Date(ts * 1000);
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

export function fmtPct(x) {
  return x === null || x === undefined ? '–' : `${(x * 100).toFixed(1)}%`;
}

export function fmtScore(x) {
  return x === null || x === undefined ? '–' : Number(x).toFixed(3);
}

let flashTimer = null;
export function flash(message, kind = 'info') {
  const region = document.getElementById('flash');
  clearTimeout(flashTimer);
  region.setAttribute('role', kind === 'error' ? 'alert' : 'status');
  replace(region, h('p', { class: kind, 'data-flash': kind }, message));
  if (kind !== 'error') flashTimer = setTimeout(() => clear(region), 6000);
}

export function badge(text, kind) {
  return h('span', { class: `badge ${kind || ''}` }, text);
}

export function table(headers, rows, attrs = {}) {
  return h('table', attrs,
    h('thead', {}, h('tr', {}, headers.map((x) => h('th', { scope: 'col' }, x)))),
    h('tbody', {}, rows.map((r) => h('tr', {}, r.map((c) => h('td', {}, c))))));
}

export function field(labelText, control) {
  return h('label', {}, labelText, ' ', control);
}

export function isTyping(event) {
  const t = event.target;
  return t && (t.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(t.tagName));
}
