// What every view shares: the session's token, calls to the API, and
// building elements whose text is always text, never HTML.

export const $ = (id) => document.getElementById(id);

// The token of this tab's session (kept in sessionStorage by app.js).
export const session = { token: null };

// What to do when the API refuses the token (app.js logs out).
let unauthorized = () => {};

export function onUnauthorized(f) {
  unauthorized = f;
}

export function refused() {
  unauthorized('The token was refused: log in again.');
}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// One call to the API: the parsed answer, or an ApiError carrying the
// API's `{"error": ...}` message. A 401 ends the session.
export async function api(path, { method = 'GET', body, signal } = {}) {
  const headers = { Authorization: `Bearer ${session.token}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(path, { method, headers, body, signal, cache: 'no-store' });
  const type = res.headers.get('Content-Type') || '';
  const data = type.includes('json') ? await res.json() : await res.text();
  if (res.status === 401) {
    refused();
    throw new ApiError(401, 'unauthorized');
  }
  if (!res.ok) {
    const message = data && data.error ? data.error : `${res.status} ${res.statusText}`;
    throw new ApiError(res.status, message);
  }
  return data;
}

export const enc = encodeURIComponent;

// An element with text children (strings become text nodes, never HTML).
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') node.className = v;
    else if (k === 'on') for (const [ev, f] of Object.entries(v)) node.addEventListener(ev, f);
    else node.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

// A button that asks before it runs `f` (for what cannot be undone).
export function dangerButton(label, question, f, extra = {}) {
  return button(label, () => window.confirm(question) && attempt(f), { class: 'danger', ...extra });
}

export function button(label, onClick, extra = {}) {
  return el('button', { type: 'button', on: { click: onClick }, ...extra }, label);
}

export function say(text) {
  $('status').textContent = text;
}

// Runs `f`, showing a failure in the status line.
export async function attempt(f) {
  try {
    await f();
  } catch (err) {
    if (err.status !== 401) say(`Failed: ${err.message}`);
  }
}

// Makes `values` the options of `select`, keeping its choice if it is
// still one of them.
export function fillSelect(select, values) {
  const keep = select.value;
  select.replaceChildren(...values.map((v) => el('option', { value: v }, v)));
  if (values.includes(keep)) select.value = keep;
}
