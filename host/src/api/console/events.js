// The live events view: `GET /v1/events` read with fetch() (so that the
// token goes in a header, which EventSource cannot do), its frames parsed
// here, at most MAX_EVENTS kept, with filters and a pause button.

import { $, el, refused, say, session } from './api.js';

const MAX_EVENTS = 500;
const MAX_FRAME_CHARS = 1 << 20;

let events = [];
let paused = false;
let missed = 0;

function eventMatches(e) {
  const device = $('events-device').value.trim();
  const name = $('events-name').value.trim();
  return (!device || e.coreid === device) && (!name || e.name.startsWith(name));
}

function eventRow(e) {
  return el('li', {}, el('code', {}, e.published_at), ` ${e.coreid} `, el('strong', {}, e.name), ' ', el('code', {}, e.data));
}

// Shows the events kept that pass the filters, newest first; while
// paused, not those that came since.
function renderEvents() {
  const upTo = paused ? events.length - missed : events.length;
  $('events').replaceChildren(
    ...events
      .slice(0, upTo)
      .filter(eventMatches)
      .reverse()
      .map(eventRow),
  );
  if (!paused) missed = 0;
  noteEvents();
}

function noteEvents() {
  const kept = `${events.length} kept (at most ${MAX_EVENTS})`;
  $('events-note').textContent = paused ? `Paused: ${missed} new events not shown; ${kept}.` : `Streaming; ${kept}.`;
}

function addEvent(e) {
  events.push(e);
  if (events.length > MAX_EVENTS) events.shift();
  if (paused) {
    missed = Math.min(missed + 1, events.length);
  } else if (eventMatches(e)) {
    const list = $('events');
    list.prepend(eventRow(e));
    while (list.childElementCount > MAX_EVENTS) list.lastElementChild.remove();
  }
  noteEvents();
}

// Reads the Server-Sent Events of `body`, calling `onData` with each
// event's data and `onComment` with each comment (the host says so when
// this reader fell behind and events were skipped). A frame longer than
// MAX_FRAME_CHARS is dropped.
async function readSse(body, onData, onComment) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n?/g, '\n');
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const lines = buffer.slice(0, end).split('\n');
      buffer = buffer.slice(end + 2);
      const field = (name) => lines.filter((l) => l.startsWith(name)).map((l) => l.slice(name.length).replace(/^ /, ''));
      const data = field('data:').join('\n');
      if (data) onData(data);
      for (const comment of field(':')) if (comment) onComment(comment);
    }
    if (buffer.length > MAX_FRAME_CHARS) buffer = '';
  }
}

export async function openEvents() {
  const controller = new AbortController();
  renderEvents();
  (async () => {
    const res = await fetch('/v1/events', {
      headers: { Authorization: `Bearer ${session.token}`, Accept: 'text/event-stream' },
      signal: controller.signal,
      cache: 'no-store',
    });
    if (res.status === 401) return refused();
    if (!res.ok) throw new Error(`the stream answered ${res.status}`);
    $('events').setAttribute('data-streaming', 'true');
    await readSse(
      res.body,
      (data) => {
        try {
          addEvent(JSON.parse(data));
        } catch {
          // A frame that is not an event (there are none today) is skipped.
        }
      },
      (comment) => say(`Live events: ${comment}`),
    );
    say('The event stream ended.');
  })().catch((err) => {
    if (err.name !== 'AbortError') say(`The event stream failed: ${err.message}`);
  });
  return () => {
    controller.abort();
    $('events').removeAttribute('data-streaming');
  };
}

function togglePause() {
  paused = !paused;
  $('events-pause').setAttribute('aria-pressed', String(paused));
  $('events-pause').textContent = paused ? 'Resume' : 'Pause';
  if (paused) noteEvents();
  else renderEvents();
}

export function wireEvents() {
  $('events-pause').addEventListener('click', togglePause);
  $('events-clear').addEventListener('click', () => {
    events = [];
    missed = 0;
    renderEvents();
  });
  $('events-device').addEventListener('input', renderEvents);
  $('events-name').addEventListener('input', renderEvents);
}
