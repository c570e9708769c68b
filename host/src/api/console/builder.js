// The Particle webhook builder of the webhooks view: a form for the
// definition's fields (event, URL, method, request type, Particle's
// default fields or not, headers, query, the JSON, form or body
// template), the JSON it builds, and the request the host would send for
// a sample event (`POST /v1/webhooks/preview`, rendered by the plugin that
// runs the webhook live), asked again as the form is edited. The sample
// event is also what the Test buttons send.

import { $, api, button, el, say } from './api.js';
import { requestView } from './exchange.js';

// How long the form stays unchanged before its preview is asked for.
const DEBOUNCE_MS = 400;

// What to do once a webhook is created (set by wireBuilder).
let created = async () => {};
let timer = null;
// Counts the previews asked for: only the latest one's answer is shown.
let asked = 0;

// The key/value rows of fieldset `id`, without those with no name.
function pairs(id) {
  const out = {};
  for (const row of $(id).querySelectorAll('.pair')) {
    const [name, value] = row.querySelectorAll('input');
    if (name.value.trim()) out[name.value.trim()] = value.value;
  }
  return out;
}

// Adds a name/value row to fieldset `id` (its legend names the rows).
function addPair(id, name = '', value = '') {
  const set = $(id);
  const what = set.dataset.what;
  const n = set.querySelectorAll('.pair').length + 1;
  const row = el(
    'div',
    { class: 'pair' },
    el('input', { 'aria-label': `${what} ${n} name`, placeholder: 'name', value: name }),
    el('input', { 'aria-label': `${what} ${n} value`, placeholder: 'value', value }),
  );
  row.append(
    button('Remove', () => {
      row.remove();
      schedulePreview();
    }, { 'aria-label': `Remove ${what.toLowerCase()} ${n}` }),
  );
  set.querySelector('.pairs').append(row);
  return row;
}

function hasBody(method) {
  return method === 'POST' || method === 'PUT';
}

// A JSON template: an object when the text is one, else the text itself
// (a template that is not JSON until rendered, like `{"t": {{t}}}`).
function jsonTemplate(text) {
  try {
    const value = JSON.parse(text);
    if (value && typeof value === 'object' && !Array.isArray(value)) return value;
  } catch {
    // Not JSON: a string template.
  }
  return text;
}

// The Particle definition the form describes.
export function definition() {
  const d = {};
  const name = $('builder-name').value.trim();
  if (name) d.name = name;
  d.event = $('builder-event').value.trim();
  d.url = $('builder-url').value.trim();
  const method = $('builder-method').value;
  d.requestType = method;
  const headers = pairs('builder-headers');
  if (Object.keys(headers).length > 0) d.headers = headers;
  const query = pairs('builder-query');
  if (Object.keys(query).length > 0) d.query = query;
  if ($('builder-no-defaults').checked) d.noDefaults = true;
  const type = $('builder-type').value;
  const text = $('builder-body').value;
  if (hasBody(method)) {
    if (type === 'json' && text.trim()) d.json = jsonTemplate(text);
    else if (type === 'body' && text) d.body = text;
    else if (type === 'form') d.form = pairs('builder-form-fields');
  }
  return d;
}

// The sample event's fields that are filled in.
export function sampleEvent() {
  const chosen = {
    name: $('sample-name').value.trim(),
    data: $('sample-data').value,
    device_id: $('sample-device').value.trim(),
  };
  return Object.fromEntries(Object.entries(chosen).filter(([, v]) => v));
}

// Shows the fields the method and request type use, and the JSON built.
function update() {
  const method = $('builder-method').value;
  const type = $('builder-type').value;
  $('builder-type-field').hidden = !hasBody(method);
  $('builder-body-field').hidden = !hasBody(method) || !(type === 'json' || type === 'body');
  $('builder-form-fields').hidden = !hasBody(method) || type !== 'form';
  $('builder-body-label').textContent = type === 'json' ? 'JSON template' : 'Body template';
  $('sample-name').placeholder = $('builder-event').value.trim() || 'the event above';
  $('builder-json').textContent = JSON.stringify(definition(), null, 2);
}

// Asks for the preview once the form has not changed for DEBOUNCE_MS,
// when it has an event and a URL.
function schedulePreview() {
  update();
  clearTimeout(timer);
  if (!$('builder-event').value.trim() || !$('builder-url').value.trim()) return;
  $('builder-preview').dataset.state = 'pending';
  timer = setTimeout(() => preview(), DEBOUNCE_MS);
}

// The request the definition would send for the sample event, or the
// API's refusal naming the field.
async function preview() {
  clearTimeout(timer);
  update();
  const mine = ++asked;
  const out = $('builder-preview');
  out.dataset.state = 'pending';
  try {
    const { request } = await api('/v1/webhooks/preview', {
      method: 'POST',
      body: JSON.stringify({ webhook: definition(), event: sampleEvent() }),
    });
    if (mine !== asked) return;
    $('builder-error').textContent = '';
    out.replaceChildren(
      el('h4', {}, 'The request it would send for the sample event'),
      request ? requestView(request) : el('p', {}, 'None: the definition sends nothing for this event.'),
    );
    out.dataset.state = 'shown';
  } catch (err) {
    if (mine !== asked || err.status === 401) return;
    $('builder-error').textContent = err.message;
    out.replaceChildren();
    out.dataset.state = 'refused';
  }
}

async function create(event) {
  event.preventDefault();
  try {
    const saved = await api('/v1/webhooks', { method: 'POST', body: JSON.stringify(definition()) });
    $('builder-error').textContent = '';
    say(`Created webhook ${saved.id}.`);
    await created(saved);
  } catch (err) {
    if (err.status !== 401) $('builder-error').textContent = err.message;
  }
}

// Wires the builder; `onCreated(view)` runs once a webhook is created.
export function wireBuilder(onCreated) {
  created = onCreated;
  const form = $('builder');
  form.addEventListener('input', schedulePreview);
  form.addEventListener('change', schedulePreview);
  form.addEventListener('submit', create);
  $('builder-preview-button').addEventListener('click', preview);
  for (const id of ['builder-headers', 'builder-query', 'builder-form-fields']) {
    $(id)
      .querySelector('.add')
      .addEventListener('click', () => addPair(id).querySelector('input').focus());
  }
  addPair('builder-form-fields', 'temperature', '{{PARTICLE_EVENT_VALUE}}');
  update();
}
