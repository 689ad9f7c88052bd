// Owns talking to /console/api: same-origin fetch with the session cookie, the CSRF token on every state
// change (held in memory only, never in storage), and errors as ApiError with the service's error code.

let csrf = null;
let onAuthLost = () => {};

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || {};
  }
}

export function setCsrf(token) { csrf = token; }
export function setAuthLost(fn) { onAuthLost = fn; }

export async function api(method, path, body, options = {}) {
  const headers = { Accept: 'application/json' };
  let payload;
  if (method !== 'GET' && csrf) headers['X-CSRF-Token'] = csrf;
  if (options.poll) headers['X-Console-Poll'] = '1';  // not user activity: no idle-timer reset
  if (options.form) payload = options.form;
  else if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  const resp = await fetch(path, { method, headers, body: payload, credentials: 'same-origin', cache: 'no-store' });
  if (resp.status === 204) return null;
  let data = null;
  try { data = await resp.json(); } catch (_) { data = null; }
  if (!resp.ok) {
    const err = (data && data.error) || { code: `http_${resp.status}`, message: resp.statusText || 'request failed' };
    const e = new ApiError(resp.status, err.code, err.message, err.details);
    if (resp.status === 401 && !options.quiet) onAuthLost(e);
    throw e;
  }
  return data;
}

export function qs(params) {
  const out = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== '') out.set(k, v);
  const text = out.toString();
  return text ? `?${text}` : '';
}
