// The history view: every attempt of every webhook, newest first, or the
// dead letters (the events a webhook gave up on), filtered by webhook,
// device, outcome and time, a page at a time; an attempt's request and
// response (or error) with its event and every attempt of it; and
// replays, of one event or of every event the filter selects.

import { $, api, attempt, button, el, enc, say } from './api.js';
import { requestView, responseView } from './exchange.js';

// Attempts asked for at once.
const PAGE = 50;
// The time a replay by filter starts from when the filter gives none.
const DEFAULT_SINCE = '24h';

// Whether the dead letters are listed, rather than every attempt.
let dead = false;
// The query of the rows shown, and the cursor of the page after them.
let shown = { query: '', cursor: null };
// The webhooks by id, to name them in the rows.
let names = new Map();
// Counts the lists and the attempts asked for, so that a slow answer
// about an earlier one does not replace a later one.
let loads = 0;
let opened = 0;

export async function openHistory() {
  // Every webhook of every dialect, to name them in the rows and offer
  // their ids in the filter.
  const webhooks = await api('/v1/webhooks');
  names = new Map(webhooks.map((w) => [w.id, w.name || w.description || w.id]));
  $('history-webhooks').replaceChildren(
    ...webhooks.map((w) => el('option', { value: w.id, label: `${w.dialect}: ${names.get(w.id)}` })),
  );
  await loadHistory();
}

// The filter's fields that are filled in.
function selection() {
  const chosen = {
    webhook: $('history-webhook').value.trim(),
    device: $('history-device').value.trim(),
    outcome: dead ? '' : $('history-outcome').value,
    since: $('history-since').value.trim(),
    until: $('history-until').value.trim(),
  };
  return Object.fromEntries(Object.entries(chosen).filter(([, v]) => v));
}

function listPath(query, cursor) {
  const q = new URLSearchParams(query);
  q.set('limit', String(PAGE));
  if (cursor) q.set('cursor', cursor);
  return `/v1/${dead ? 'dead-letters' : 'deliveries'}?${q}`;
}

// The first page of what the filter selects.
export async function loadHistory() {
  const table = $('history');
  const mine = ++loads;
  $('history-error').textContent = '';
  table.setAttribute('aria-busy', 'true');
  try {
    const query = new URLSearchParams(selection()).toString();
    const page = await api(listPath(query));
    if (mine !== loads) return;
    const list = dead ? page.dead_letters : page.deliveries;
    table.tBodies[0].replaceChildren(...list.map(row));
    if (list.length === 0) {
      table.tBodies[0].append(el('tr', {}, el('td', { colspan: '7' }, dead ? 'No dead letters.' : 'No attempts.')));
    }
    shown = { query, cursor: page.next_cursor };
    $('history-more').hidden = !shown.cursor;
  } catch (err) {
    if (err.status !== 401 && mine === loads) $('history-error').textContent = err.message;
  } finally {
    if (mine === loads) table.removeAttribute('aria-busy');
  }
}

// The page after the rows shown, added below them.
async function more() {
  const mine = loads;
  const button = $('history-more');
  button.disabled = true;
  let page;
  try {
    page = await api(listPath(shown.query, shown.cursor));
  } finally {
    button.disabled = false;
  }
  if (mine !== loads) return;
  $('history').tBodies[0].append(...(dead ? page.dead_letters : page.deliveries).map(row));
  shown.cursor = page.next_cursor;
  $('history-more').hidden = !shown.cursor;
}

// `2026-12-04T10:00:00.123Z` as `2026-12-04 10:00:00.123`.
function time(at) {
  return at.replace('T', ' ').replace('Z', '');
}

// Webhook `id` by its name, when it has one.
function webhookName(id) {
  const name = names.get(id);
  return name && name !== id ? `${name} (${id})` : id;
}

function answerOf(a) {
  if (a.response) return String(a.response.status);
  return a.error || '–';
}

// One attempt as a row; a click on it (or on its time, a button) shows it.
function row(a) {
  const tr = el(
    'tr',
    { class: 'pick', 'data-event': a.event_id, on: { click: () => attempt(() => showAttempt(a, tr)) } },
    el('td', {}, el('button', { type: 'button', class: 'link', title: `${a.at} (UTC)` }, time(a.at))),
    el('td', { class: `outcome ${a.outcome}` }, a.outcome),
    el('td', {}, String(a.attempt)),
    el('td', { title: a.webhook }, names.get(a.webhook) || a.webhook),
    el('td', {}, a.device_id),
    el('td', {}, a.event),
    el('td', {}, answerOf(a)),
  );
  return tr;
}

// Attempt `a` in the detail pane: its request, its response or error, a
// Replay button, then its event with every attempt of it.
async function showAttempt(a, tr) {
  const mine = ++opened;
  for (const r of $('history').tBodies[0].rows) r.removeAttribute('aria-selected');
  if (tr) tr.setAttribute('aria-selected', 'true');
  const replayed = el('output', { class: 'replayed' });
  const ofEvent = el('div', { class: 'event' }, el('p', {}, 'Loading its event…'));
  const title = el('h3', { tabindex: '-1' }, `Attempt ${a.attempt} of event ${a.event_id}`);
  $('history-detail').replaceChildren(
    title,
    el('p', {}, `${a.outcome} at ${time(a.at)} UTC after ${a.duration_ms} ms; webhook ${webhookName(a.webhook)}, event ${a.event} from ${a.device_id}.`),
    el(
      'p',
      {},
      button('Replay', () => attempt(() => replayEvent(a.event_id, replayed)), { 'aria-label': `Replay event ${a.event_id}` }),
      ' ',
      replayed,
    ),
    el('h4', {}, 'Request and response'),
    a.request ? requestView(a.request) : el('p', {}, 'No request was sent.'),
    a.response ? responseView(a.response) : el('p', {}, 'No response.'),
    a.error ? el('p', { class: 'error' }, `Error: ${a.error}`) : null,
    el('h4', {}, 'Its event'),
    ofEvent,
  );
  if (tr) title.focus();
  const all = await api(`/v1/deliveries/${enc(a.event_id)}`);
  if (mine !== opened) return;
  const e = all.event;
  const facts = e
    ? el(
        'dl',
        {},
        el('dt', {}, 'Name'),
        el('dd', {}, e.name),
        el('dt', {}, 'Device'),
        el('dd', {}, e.device_id),
        el('dt', {}, 'Data'),
        el('dd', {}, el('code', {}, e.data)),
        el('dt', {}, 'Published'),
        el('dd', {}, e.published_at),
      )
    : el('p', {}, 'The event itself is no longer kept.');
  const attempts = el(
    'ol',
    { class: 'attempts' },
    ...all.attempts.map((other) =>
      el(
        'li',
        {},
        button(`#${other.attempt} at ${time(other.at)}: ${other.outcome}, ${answerOf(other)}`, () => attempt(() => showAttempt(other)), {
          class: 'link',
        }),
      ),
    ),
  );
  ofEvent.replaceChildren(facts, el('p', {}, `Its attempts, oldest first (${all.attempts.length}):`), attempts);
}

async function replayEvent(id, out) {
  const { replayed } = await api(`/v1/deliveries/${enc(id)}/replay`, { method: 'POST' });
  out.textContent = `replayed ${replayed}`;
  say(`Replayed event ${id}.`);
}

// Replays every event the filter selects (the dead letters' when they are
// listed), since the filter's `since` or DEFAULT_SINCE.
async function replaySelected() {
  const body = { since: DEFAULT_SINCE, ...selection() };
  if (dead) body.outcome = 'gave_up';
  const what = dead ? 'every dead letter' : 'every event';
  if (!window.confirm(`Replay ${what} the filter selects since ${body.since}?`)) return;
  $('history-error').textContent = '';
  try {
    const { replayed } = await api('/v1/deliveries/replay', { method: 'POST', body: JSON.stringify(body) });
    $('history-replayed').textContent = `replayed ${replayed}`;
    say(`Replayed ${replayed} events.`);
  } catch (err) {
    if (err.status !== 401) $('history-error').textContent = err.message;
  }
}

// Lists the dead letters (`on`) or every attempt.
function listDead(on) {
  dead = on;
  $('history-all').setAttribute('aria-pressed', String(!on));
  $('history-dead').setAttribute('aria-pressed', String(on));
  $('history-outcome-field').hidden = on;
  $('history-caption').textContent = on
    ? 'Dead letters, newest first: the last attempt of each event a webhook gave up on'
    : 'Attempts of every webhook, newest first';
  $('history-replayed').textContent = '';
  $('history-detail').replaceChildren();
  return loadHistory();
}

export function wireHistory() {
  $('history-filter').addEventListener('submit', (event) => {
    event.preventDefault();
    $('history-replayed').textContent = '';
    attempt(loadHistory);
  });
  $('history-all').addEventListener('click', () => attempt(() => listDead(false)));
  $('history-dead').addEventListener('click', () => attempt(() => listDead(true)));
  $('history-more').addEventListener('click', () => attempt(more));
  $('history-replay').addEventListener('click', () => attempt(replaySelected));
}
