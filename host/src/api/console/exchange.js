// How a request and its answer show in every view (the log, the history,
// the builder's preview, a test): the method, URL, headers and body of a
// request; the status, headers and body of a response; as the API gives
// them, secrets masked. Each part has a class, so that it can be found.

import { el } from './api.js';

export function headerLines(headers) {
  return headers.map(([k, v]) => `${k}: ${v}`).join('\n');
}

// The headers and the body of a message, each in its own block when there
// is one, and a note when the API kept only the start of the body.
function message(m) {
  const parts = [];
  if (m.headers.length > 0) parts.push(el('pre', { class: 'headers' }, headerLines(m.headers)));
  if (m.body) parts.push(el('pre', { class: 'body' }, m.body));
  const kept = new TextEncoder().encode(m.body || '').length;
  if (m.body_bytes > kept) parts.push(el('p', { class: 'note' }, `The body is ${m.body_bytes} bytes; the first ${kept} are shown.`));
  return parts;
}

// A request: `METHOD URL`, its headers and body.
export function requestView(r) {
  return el(
    'div',
    { class: 'request' },
    el('p', {}, el('span', { class: 'method' }, r.method), ' ', el('code', { class: 'url' }, r.url)),
    ...message(r),
  );
}

// A response: `Response STATUS`, its headers and body.
export function responseView(r) {
  return el('div', { class: 'response' }, el('p', {}, 'Response ', el('span', { class: 'status' }, String(r.status))), ...message(r));
}
