// Owns how content is shown: text with offending sentences marked, images and video blurred until revealed,
// and the video timeline of flagged segments with frame thumbnails drawn from the (same-origin) video itself.

import { fmtScore, h, s } from './dom.js';

// Offsets from the service count code points; JS strings count UTF-16 units, so slice code points.
export function highlightedText(text, sentences, terms) {
  const cps = Array.from(text || '');
  const spans = [];
  for (const x of sentences || []) spans.push({ start: x.start, end: x.end, kind: 'offending', info: x });
  for (const t of terms || []) spans.push({ start: t.start, end: t.end, kind: 'blockterm', info: t });
  spans.sort((a, b) => a.start - b.start || b.end - a.end);
  const out = [];
  let pos = 0;
  for (const sp of spans) {
    const start = Math.max(sp.start, pos);
    const end = Math.min(sp.end, cps.length);
    if (end <= start) continue;
    if (start > pos) out.push(cps.slice(pos, start).join(''));
    let title;
    if (sp.kind === 'offending') {
      const top = Object.entries(sp.info.scores || {}).sort((a, b) => b[1] - a[1])[0] || ['', 0];
      title = `offending sentence: ${top[0]} ${fmtScore(top[1])}`;
    } else {
      title = `blocklist term: ${sp.info.term}`;
    }
    out.push(h('mark', { class: sp.kind, title }, cps.slice(start, end).join(''),
      h('span', { class: 'sr-only' }, ` (${title})`)));
    pos = end;
  }
  if (pos < cps.length) out.push(cps.slice(pos).join(''));
  return h('div', { class: 'content-text', id: 'content-text', tabindex: '0', 'aria-label': 'Submitted text' }, out);
}

// A reveal control: click toggles, holding the pointer on the media reveals while held, `v` toggles.
export function blurrable(mediaEl, blurred, label) {
  const box = h('div', {});
  const button = h('button', { type: 'button', class: 'secondary', id: 'reveal', 'aria-pressed': String(!blurred),
    'aria-keyshortcuts': 'v' });
  const targets = [mediaEl];
  function set(b) {
    blurred = b;
    for (const t of targets) t.classList.toggle('blurred', b);
    button.textContent = b ? `Reveal ${label} (v)` : `Blur ${label} (v)`;
    button.setAttribute('aria-pressed', String(!b));
  }
  button.addEventListener('click', () => set(!blurred));
  mediaEl.addEventListener('pointerdown', () => { if (blurred) { for (const t of targets) t.classList.remove('blurred'); } });
  const restore = () => { if (blurred) for (const t of targets) t.classList.add('blurred'); };
  mediaEl.addEventListener('pointerup', restore);
  mediaEl.addEventListener('pointerleave', restore);
  set(blurred);
  box.append(h('div', { class: 'media-box' }, mediaEl), h('div', { class: 'row' }, button,
    h('span', { class: 'muted' }, 'Hold the pointer on the media to peek.')));
  return { box, toggle: () => set(!blurred), addTarget(el) { targets.push(el); el.classList.toggle('blurred', blurred); } };
}

export function imageView(url, blurred) {
  const img = h('img', { src: url, alt: 'Submitted image', class: 'media', id: 'media-image', draggable: 'false' });
  return blurrable(img, blurred, 'image');
}

const COLOURS = { sexual: '#a3191c', violence: '#7a4a00', hate: '#5b2a86', default: '#174f8a' };

export function videoView(url, media, blurred) {
  const video = h('video', { src: url, controls: true, preload: 'metadata', class: 'media', id: 'media-video',
    'aria-label': 'Submitted video', muted: true });
  const reveal = blurrable(video, blurred, 'video');
  const duration = Math.max(1, media.duration_ms || 1);
  const frames = media.frames || [];
  const segments = media.segments || [];
  const W = 1000;
  const svg = s('svg', { class: 'timeline', viewBox: `0 0 ${W} 64`, preserveAspectRatio: 'none', role: 'img',
    'aria-label': `Timeline: ${segments.length} flagged segment(s) over ${(duration / 1000).toFixed(1)} s` });
  svg.append(s('rect', { x: 0, y: 0, width: W, height: 64, fill: '#ffffff' }));
  for (const seg of segments) {
    const x = (seg.start_ms / duration) * W;
    const w = Math.max(4, ((seg.end_ms - seg.start_ms) / duration) * W);
    const rect = s('rect', { x, y: 4, width: w, height: 22, class: 'seg', fill: COLOURS[seg.category] || COLOURS.default },
      s('title', {}, `${seg.category} ${(seg.start_ms / 1000).toFixed(1)}–${(seg.end_ms / 1000).toFixed(1)} s, max ${fmtScore(seg.max_score)}`));
    rect.addEventListener('click', () => { video.currentTime = seg.start_ms / 1000; });
    svg.append(rect);
  }
  for (const f of frames) {
    const top = Math.max(0, ...Object.values(f.scores || {}));
    const x = (f.ts_ms / duration) * W;
    svg.append(s('line', { x1: x, x2: x, y1: 62, y2: 62 - Math.max(2, top * 32), stroke: '#4a5360', 'stroke-width': 3 },
      s('title', {}, `frame at ${(f.ts_ms / 1000).toFixed(1)} s: max ${fmtScore(top)}`)));
  }
  // Thumbnails at the segments' worst frames (or the top-scored frames when nothing was flagged).
  const picks = segments.length ? segments.map((x) => ({ ts: x.max_score_ms ?? x.start_ms, label: x.category }))
    : [...frames].sort((a, b) => Math.max(0, ...Object.values(b.scores || {})) - Math.max(0, ...Object.values(a.scores || {})))
      .slice(0, 4).map((f) => ({ ts: f.ts_ms, label: 'frame' }));
  const thumbs = h('ul', { class: 'thumbs', id: 'thumbs', 'aria-label': 'Frame thumbnails' });
  const canvases = [];
  for (const p of picks.slice(0, 8)) {
    const canvas = h('canvas', { width: 128, height: 72, 'aria-hidden': 'true' });
    canvases.push([canvas, p.ts]);
    reveal.addTarget(canvas);
    const btn = h('button', { type: 'button', 'aria-label': `Jump to ${(p.ts / 1000).toFixed(1)} s (${p.label})` },
      canvas, h('span', {}, `${(p.ts / 1000).toFixed(1)} s · ${p.label}`));
    btn.addEventListener('click', () => { video.currentTime = p.ts / 1000; video.focus(); });
    thumbs.append(h('li', {}, btn));
  }
  drawThumbs(url, canvases, thumbs);
  reveal.box.append(svg, thumbs);
  return reveal;
}

function drawThumbs(url, canvases, thumbs) {
  if (!canvases.length) return;
  const probe = document.createElement('video');
  probe.muted = true;
  probe.preload = 'auto';
  probe.src = url;
  let i = 0;
  const next = () => {
    if (i >= canvases.length) { probe.removeAttribute('src'); probe.load(); thumbs.dataset.ready = 'true'; return; }
    probe.currentTime = Math.max(0, canvases[i][1] / 1000);
  };
  probe.addEventListener('seeked', () => {
    const [canvas] = canvases[i];
    canvas.getContext('2d').drawImage(probe, 0, 0, canvas.width, canvas.height);
    canvas.dataset.drawn = 'true';
    i += 1;
    next();
  });
  probe.addEventListener('loadeddata', next, { once: true });
  probe.addEventListener('error', () => { thumbs.dataset.ready = 'unplayable'; }, { once: true });
}
