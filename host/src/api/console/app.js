// The edgehook console: one page over the HTTP API.
//
// Every call carries `Authorization: Bearer TOKEN`; the token lives in this
// tab's sessionStorage, never in a URL. Everything the API returns is
// rendered with textContent (never as HTML), and secrets come masked from
// the API. The live event stream is read with fetch() so that it, too,
// sends the token in a header.

const TOKEN_KEY = 'edgehook.token';
// Bounds on what the page keeps and asks for, whatever the fleet's size.
const MAX_EVENTS = 500;
const MAX_FRAME_CHARS = 1 << 20;
const MAX_GROUPS = 200;
const MAX_THINGS = 200;
const MAX_STATUS_LOOKUPS = 100;
const HEALTH_POINTS = 60;
const HEALTH_PERIOD_MS = 5000;
const IOTTLY_MAX = Number(document.querySelector('meta[name="edgehook-iottly-max-webhooks"]').content);

const $ = (id) => document.getElementById(id);

let token = null;
let webhooks = [];
let leave = () => {};

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// One call to the API: the parsed answer, or an ApiError carrying the
// API's `{"error": ...}` message. A 401 ends the session.
async function api(path, { method = 'GET', body, signal } = {}) {
  const headers = { Authorization: `Bearer ${token}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(path, { method, headers, body, signal, cache: 'no-store' });
  const type = res.headers.get('Content-Type') || '';
  const data = type.includes('json') ? await res.json() : await res.text();
  if (res.status === 401) {
    logout('The token was refused: log in again.');
    throw new ApiError(401, 'unauthorized');
  }
  if (!res.ok) {
    const message = data && data.error ? data.error : `${res.status} ${res.statusText}`;
    throw new ApiError(res.status, message);
  }
  return data;
}

const enc = encodeURIComponent;

// An element with text children (strings become text nodes, never HTML).
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') node.className = v;
    else if (k === 'on') for (const [ev, f] of Object.entries(v)) node.addEventListener(ev, f);
    else node.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

function button(label, onClick, extra = {}) {
  return el('button', { type: 'button', on: { click: onClick }, ...extra }, label);
}

function say(text) {
  $('status').textContent = text;
}

// Runs `f`, showing a failure in the status line.
async function attempt(f) {
  try {
    await f();
  } catch (err) {
    if (err.status !== 401) say(`Failed: ${err.message}`);
  }
}

// ---- Login ----

async function login(event) {
  event.preventDefault();
  const candidate = $('token').value;
  $('login-error').textContent = '';
  let res;
  try {
    res = await fetch('/v1/plugins', { headers: { Authorization: `Bearer ${candidate}` }, cache: 'no-store' });
  } catch (err) {
    $('login-error').textContent = `The host did not answer: ${err.message}`;
    return;
  }
  if (!res.ok) {
    $('login-error').textContent = res.status === 401 ? 'Wrong token.' : `The host answered ${res.status}.`;
    return;
  }
  token = candidate;
  sessionStorage.setItem(TOKEN_KEY, token);
  $('token').value = '';
  enter();
}

function enter() {
  $('login').hidden = true;
  $('nav').hidden = false;
  show('webhooks');
}

function logout(message = '') {
  leave();
  leave = () => {};
  token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  for (const s of document.querySelectorAll('main > section')) s.hidden = true;
  $('nav').hidden = true;
  $('login').hidden = false;
  $('login-error').textContent = message;
  $('new-key').hidden = true;
  $('new-key').textContent = '';
  say('');
  $('token').focus();
}

// ---- Views ----

const views = {
  webhooks: loadWebhooks,
  log: openLog,
  events: openEvents,
  plugins: loadPlugins,
  devices: loadDevices,
  health: openHealth,
};

// Shows view `name`; its loader returns what to do on leaving it.
async function show(name) {
  leave();
  leave = () => {};
  say('');
  $('new-key').hidden = true;
  $('new-key').textContent = '';
  for (const s of document.querySelectorAll('main > section')) s.hidden = s.id !== `view-${name}`;
  for (const b of document.querySelectorAll('#nav [data-view]')) {
    if (b.dataset.view === name) b.setAttribute('aria-current', 'page');
    else b.removeAttribute('aria-current');
  }
  await attempt(async () => {
    leave = (await views[name]()) || (() => {});
  });
}

// ---- Webhooks ----

// Every webhook of every dialect, as rows.
async function allWebhooks() {
  const [particle, groups, devices] = await Promise.all([
    api('/v1/webhooks'),
    api('/v1/groups'),
    api('/v1/devices'),
  ]);
  const rows = particle.map((w) => ({
    dialect: 'Particle',
    id: w.id,
    name: w.name || '',
    filter: `event ${w.event ?? w.eventName ?? ''}` + (w.deviceID || w.deviceid ? `, device ${w.deviceID || w.deviceid}` : ''),
    url: w.url || '',
    enabled: !w.disabled,
    raw: w,
  }));
  const projects = [];
  const someGroups = groups.slice(0, MAX_GROUPS);
  const perGroup = await Promise.all(
    someGroups.map((g) => Promise.all([api(`/v1/projects/${enc(g.id)}/webhooks`), api(`/groups/${enc(g.id)}/webhooks`)])),
  );
  const ungrouped = devices.filter((d) => !d.group).slice(0, MAX_THINGS);
  const perThing = await Promise.all(ungrouped.map((d) => api(`/things/${enc(d.id)}/webhooks`)));
  someGroups.forEach((g, i) => {
    const [iottly, mainflux] = perGroup[i];
    projects.push({ id: g.id, count: iottly.length });
    for (const w of iottly) {
      rows.push({
        dialect: 'Iottly',
        id: w.id,
        name: w.description,
        filter: `project ${w.project_id}, ${w.type} messages` + (w.channel ? `, channel ${w.channel}` : ''),
        url: w.url,
        enabled: true,
        project: w.project_id,
      });
    }
    for (const w of mainflux) rows.push(mainfluxRow(w));
  });
  for (const list of perThing) for (const w of list) rows.push(mainfluxRow(w));
  return { rows, projects, groups, devices };
}

function mainfluxRow(w) {
  return {
    dialect: 'Mainflux',
    id: w.id,
    name: w.name,
    filter: `thing ${w.thing_id}` + (w.group_id ? ` (group ${w.group_id})` : ''),
    url: w.url,
    enabled: true,
    raw: w,
  };
}

// The newest delivery of webhook `id`: its status, or its error.
async function lastStatus(id) {
  const log = await api(`/v1/webhooks/${enc(id)}/log`);
  const last = log.requests[0];
  if (!last) return '–';
  if (last.response) return String(last.response.status);
  return last.error ? `error: ${last.error}` : '–';
}

async function loadWebhooks() {
  const table = $('webhooks');
  table.setAttribute('aria-busy', 'true');
  try {
    await renderWebhooks(await allWebhooks());
  } finally {
    table.removeAttribute('aria-busy');
  }
}

function renderWebhooks({ rows, projects, groups, devices }) {
  webhooks = rows;
  const body = $('webhooks').tBodies[0];
  body.replaceChildren(
    ...rows.map((w) => {
      const status = el('td', {}, '…');
      const actions = el('td', {}, button('Log', () => showLog(w.id), { 'aria-label': `Log of ${w.name || w.id}` }));
      if (w.raw) actions.append(button('Edit', () => editWebhook(w), { 'aria-label': `Edit ${w.name || w.id}` }));
      if (w.dialect === 'Particle') {
        actions.append(
          button(w.enabled ? 'Disable' : 'Enable', () => attempt(() => toggleWebhook(w)), {
            'aria-label': `${w.enabled ? 'Disable' : 'Enable'} ${w.name || w.id}`,
          }),
        );
      }
      actions.append(
        button('Delete', () => attempt(() => deleteWebhook(w)), { class: 'danger', 'aria-label': `Delete ${w.name || w.id}` }),
      );
      return el(
        'tr',
        { 'data-id': w.id },
        el('td', {}, w.dialect),
        el('td', {}, w.name),
        el('td', {}, w.filter),
        el('td', {}, el('code', {}, w.url)),
        el('td', {}, w.enabled ? 'yes' : 'no'),
        status,
        actions,
      );
    }),
  );
  if (rows.length === 0) body.append(el('tr', {}, el('td', { colspan: '7' }, 'No webhooks yet.')));
  const statusCells = [...body.rows].map((r) => r.cells[5]);
  rows.slice(0, MAX_STATUS_LOOKUPS).forEach((w, i) => {
    if (w.raw && w.raw.file_error) {
      statusCells[i].textContent = `file error: ${w.raw.file_error}`;
      return;
    }
    lastStatus(w.id).then(
      (s) => (statusCells[i].textContent = s),
      () => (statusCells[i].textContent = '?'),
    );
  });
  $('projects').replaceChildren(
    projects.length === 0
      ? el('p', {}, 'No projects: an Iottly project is a group of the device registry.')
      : el('ul', {}, ...projects.map((p) => el('li', {}, `${p.id}: ${p.count} of ${IOTTLY_MAX} webhooks${p.count >= IOTTLY_MAX ? ' (full)' : ''}`))),
  );
  fillSelect($('iottly-project'), groups.map((g) => g.id));
  fillSelect($('mainflux-thing'), devices.map((d) => d.id));
}

function fillSelect(select, values) {
  const keep = select.value;
  select.replaceChildren(...values.map((v) => el('option', { value: v }, v)));
  if (values.includes(keep)) select.value = keep;
}

let editing = null;

// Fills the form with webhook `w`'s definition as the API shows it: a
// masked secret sent back unchanged keeps the stored one.
function editWebhook(w) {
  let definition;
  if (w.dialect === 'Particle') {
    definition = { ...w.raw };
    for (const k of ['id', 'created_at', 'file_error']) delete definition[k];
  } else {
    const { name, url, headers, metadata } = w.raw;
    definition = { name, url, headers, metadata };
  }
  editing = w;
  $('webhook-form-title').textContent = `Edit ${w.dialect} webhook ${w.id}`;
  $('webhook-json-label').textContent = `${w.dialect} webhook JSON`;
  $('webhook-submit').textContent = 'Save';
  $('webhook-cancel').hidden = false;
  $('webhook-json').value = JSON.stringify(definition, null, 2);
  $('webhook-error').textContent = '';
  $('webhook-json').focus();
}

function stopEditing() {
  editing = null;
  $('webhook-form-title').textContent = 'New Particle webhook';
  $('webhook-json-label').textContent = 'Particle webhook JSON';
  $('webhook-submit').textContent = 'Create';
  $('webhook-cancel').hidden = true;
  $('webhook-error').textContent = '';
  $('webhook-json').removeAttribute('aria-invalid');
}

async function submitWebhook(event) {
  event.preventDefault();
  const field = $('webhook-json');
  try {
    let saved;
    if (!editing) saved = await api('/v1/webhooks', { method: 'POST', body: field.value });
    else if (editing.dialect === 'Particle') saved = await api(`/v1/webhooks/${enc(editing.id)}`, { method: 'PUT', body: field.value });
    else saved = await api(`/webhooks/${enc(editing.id)}`, { method: 'PUT', body: field.value });
    if (!editing) field.value = field.defaultValue;
    stopEditing();
    say(`Saved webhook ${saved.id}.`);
    await loadWebhooks();
  } catch (err) {
    if (err.status === 401) return;
    field.setAttribute('aria-invalid', 'true');
    $('webhook-error').textContent = err.message;
  }
}

async function toggleWebhook(w) {
  const definition = { ...w.raw };
  for (const k of ['id', 'created_at', 'file_error']) delete definition[k];
  if (w.enabled) definition.disabled = true;
  else delete definition.disabled;
  await api(`/v1/webhooks/${enc(w.id)}`, { method: 'PUT', body: JSON.stringify(definition) });
  say(`${w.enabled ? 'Disabled' : 'Enabled'} webhook ${w.id}.`);
  await loadWebhooks();
}

async function deleteWebhook(w) {
  if (w.dialect === 'Particle') await api(`/v1/webhooks/${enc(w.id)}`, { method: 'DELETE' });
  else if (w.dialect === 'Iottly') await api(`/v1/projects/${enc(w.project)}/webhooks/${enc(w.id)}`, { method: 'DELETE' });
  else await api('/webhooks', { method: 'DELETE', body: JSON.stringify({ webhook_ids: [w.id] }) });
  if (editing && editing.id === w.id) stopEditing();
  say(`Deleted webhook ${w.id}.`);
  await loadWebhooks();
}

// A form whose submission is `send(form)`; a refusal shows in `errorId`.
function dialectForm(formId, errorId, send) {
  $(formId).addEventListener('submit', async (event) => {
    event.preventDefault();
    $(errorId).textContent = '';
    try {
      await send();
      event.target.reset();
      await loadWebhooks();
    } catch (err) {
      if (err.status !== 401) $(errorId).textContent = err.message;
    }
  });
}

// ---- Log ----

function showLog(id) {
  show('log').then(() => {
    $('log-webhook').value = id;
    return attempt(loadLog);
  });
}

async function openLog() {
  if (webhooks.length === 0) webhooks = (await allWebhooks()).rows;
  fillSelect(
    $('log-webhook'),
    webhooks.map((w) => w.id),
  );
  for (const option of $('log-webhook').options) {
    const w = webhooks.find((x) => x.id === option.value);
    option.textContent = `${w.dialect}: ${w.name || w.id} (${w.id})`;
  }
  await loadLog();
}

async function loadLog() {
  const id = $('log-webhook').value;
  if (!id) {
    $('log-requests').replaceChildren(el('li', {}, 'No webhooks.'));
    $('log-errors').replaceChildren();
    return;
  }
  const log = await api(`/v1/webhooks/${enc(id)}/log`);
  $('log-requests').replaceChildren(...entries(log.requests));
  $('log-errors').replaceChildren(...entries(log.errors));
}

function entries(list) {
  if (list.length === 0) return [el('li', {}, 'None yet.')];
  return list.map((e) => {
    const item = el(
      'li',
      {},
      el('p', {}, `${e.at}: event ${e.event.name} from ${e.event.device_id} (data ${e.event.data})`),
    );
    if (e.request) {
      item.append(
        el('p', {}, `${e.request.method} `, el('code', {}, e.request.url)),
        el('pre', {}, headerLines(e.request.headers) + (e.request.body ? `\n\n${e.request.body}` : '')),
      );
    }
    if (e.response) {
      item.append(
        el('p', {}, `Response ${e.response.status}`),
        el('pre', {}, headerLines(e.response.headers) + (e.response.body ? `\n\n${e.response.body}` : '')),
      );
    }
    if (e.error) item.append(el('p', { class: 'error' }, `Error: ${e.error}`));
    return item;
  });
}

function headerLines(headers) {
  return headers.map(([k, v]) => `${k}: ${v}`).join('\n');
}

// ---- Live events ----

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

function renderEvents() {
  $('events').replaceChildren(
    ...events
      .filter(eventMatches)
      .reverse()
      .map(eventRow),
  );
  missed = 0;
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
    missed += 1;
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

async function openEvents() {
  const controller = new AbortController();
  renderEvents();
  (async () => {
    const res = await fetch('/v1/events', {
      headers: { Authorization: `Bearer ${token}`, Accept: 'text/event-stream' },
      signal: controller.signal,
      cache: 'no-store',
    });
    if (res.status === 401) return logout('The token was refused: log in again.');
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

// ---- Plugins ----

function bytes(n) {
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(1)} KiB`;
  return `${n} B`;
}

async function loadPlugins() {
  const plugins = await api('/v1/plugins');
  $('plugins').tBodies[0].replaceChildren(
    ...plugins.map((p) => {
      const errors = Object.entries(p.errors || {})
        .filter(([, n]) => n > 0)
        .map(([cause, n]) => `${cause}: ${n}`)
        .join(', ');
      const state = [p.state, p.suspended_reason, p.disabled_reason].filter(Boolean).join(': ');
      return el(
        'tr',
        {},
        el('td', {}, p.name),
        el('td', {}, state),
        el('td', {}, el('code', { title: p.digest || '' }, p.digest ? `${p.digest.slice(0, 12)}…` : '–')),
        el('td', {}, String(p.calls)),
        el('td', {}, errors || 'none'),
        el('td', {}, p.last_call_error || p.error || '–'),
        el('td', {}, bytes(p.memory_high_water)),
      );
    }),
  );
  if (plugins.length === 0) {
    $('plugins').tBodies[0].append(el('tr', {}, el('td', { colspan: '7' }, 'No plugins in the plugins directory.')));
  }
}

// ---- Devices and groups ----

function showKey(device, key) {
  const out = $('new-key');
  out.replaceChildren(`Key of ${device} (shown once, copy it now): `, el('code', {}, key));
  out.hidden = false;
}

async function loadDevices() {
  const [groups, devices] = await Promise.all([api('/v1/groups'), api('/v1/devices')]);
  $('groups').replaceChildren(
    ...groups.map((g) =>
      el(
        'li',
        {},
        `${g.id}${g.name ? ` (${g.name})` : ''} `,
        button('Delete', () => attempt(() => api(`/v1/groups/${enc(g.id)}`, { method: 'DELETE' }).then(loadDevices)), {
          class: 'danger',
          'aria-label': `Delete group ${g.id}`,
        }),
      ),
    ),
  );
  if (groups.length === 0) $('groups').append(el('li', {}, 'No groups.'));
  $('devices').tBodies[0].replaceChildren(
    ...devices.map((d) =>
      el(
        'tr',
        {},
        el('td', {}, d.id),
        el('td', {}, d.name),
        el('td', {}, d.group || '–'),
        el(
          'td',
          {},
          button(
            'Rotate key',
            () =>
              attempt(async () => {
                const { key } = await api(`/v1/devices/${enc(d.id)}/key`, { method: 'POST' });
                showKey(d.id, key);
              }),
            { 'aria-label': `Rotate the key of ${d.id}` },
          ),
          button('Delete', () => attempt(() => api(`/v1/devices/${enc(d.id)}`, { method: 'DELETE' }).then(loadDevices)), {
            class: 'danger',
            'aria-label': `Delete device ${d.id}`,
          }),
        ),
      ),
    ),
  );
  const select = $('device-group');
  const keep = select.value;
  select.replaceChildren(el('option', { value: '' }, 'none'), ...groups.map((g) => el('option', { value: g.id }, g.id)));
  select.value = keep;
}

// ---- Health ----

// The value of each sample of the Prometheus text, by name with labels.
function samples(text) {
  const out = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const cut = line.lastIndexOf(' ');
    out.set(line.slice(0, cut), Number(line.slice(cut + 1)));
  }
  return out;
}

function sum(map, prefix, keep = () => true) {
  let total = 0;
  for (const [k, v] of map) if ((k === prefix || k.startsWith(`${prefix}{`)) && keep(k)) total += v;
  return total;
}

function chart(svg, points) {
  const max = Math.max(1, ...points);
  const step = 300 / (HEALTH_POINTS - 1);
  const start = HEALTH_POINTS - points.length;
  svg.querySelector('polyline').setAttribute(
    'points',
    points.map((v, i) => `${((start + i) * step).toFixed(1)},${(58 - (v / max) * 56).toFixed(1)}`).join(' '),
  );
}

async function openHealth() {
  const throughput = [];
  const errors = [];
  let previous = null;
  const tick = async () => {
    const [metrics, health] = await Promise.all([
      api('/metrics'),
      fetch('/healthz', { cache: 'no-store' }).then((r) => r.json()),
    ]);
    $('health-state').textContent = `Host: ${health.status}${health.error ? ` (${health.error})` : ''}`;
    const m = samples(metrics);
    const now = performance.now();
    const current = {
      at: now,
      events: sum(m, 'edgehook_events_total'),
      failed: sum(m, 'edgehook_requests_total', (k) => !k.includes('outcome="success"')),
      requests: sum(m, 'edgehook_requests_total'),
    };
    if (previous) {
      const seconds = (current.at - previous.at) / 1000;
      const rate = (current.events - previous.events) / seconds;
      const failedRate = (current.failed - previous.failed) / seconds;
      throughput.push(rate);
      errors.push(failedRate);
      if (throughput.length > HEALTH_POINTS) throughput.shift();
      if (errors.length > HEALTH_POINTS) errors.shift();
      const sent = current.requests - previous.requests;
      const share = sent > 0 ? ` (${Math.round((100 * (current.failed - previous.failed)) / sent)}% of requests)` : '';
      $('throughput-now').textContent = `${rate.toFixed(2)}/s now, peak ${Math.max(...throughput).toFixed(2)}/s`;
      $('errors-now').textContent = `${failedRate.toFixed(2)}/s now${share}, peak ${Math.max(...errors).toFixed(2)}/s`;
      chart($('chart-throughput'), throughput);
      chart($('chart-errors'), errors);
    }
    previous = current;
    const figures = [
      ['Events taken', current.events],
      ['Requests sent', current.requests],
      ['Requests failed', current.failed],
      ['Queue depth', sum(m, 'edgehook_queue_depth')],
      ['Hosts throttled now', sum(m, 'edgehook_sleeping_hosts')],
      ['Webhooks disabled', sum(m, 'edgehook_webhooks_disabled')],
    ];
    $('health-figures').replaceChildren(...figures.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, String(v))]));
  };
  await tick();
  const timer = setInterval(() => attempt(tick), HEALTH_PERIOD_MS);
  return () => clearInterval(timer);
}

// ---- Wiring ----

$('login').addEventListener('submit', login);
$('logout').addEventListener('click', () => logout());
for (const b of document.querySelectorAll('#nav [data-view]')) {
  b.addEventListener('click', () => {
    show(b.dataset.view);
    // Keyboard and screen-reader users land on the view they opened.
    document.querySelector(`#view-${b.dataset.view} h2`).focus();
  });
}
$('webhook-form').addEventListener('submit', submitWebhook);
$('webhook-cancel').addEventListener('click', () => {
  stopEditing();
  $('webhook-json').value = '';
});
dialectForm('iottly-form', 'iottly-error', () =>
  api(`/v1/projects/${enc($('iottly-project').value)}/webhooks`, {
    method: 'POST',
    body: JSON.stringify({ description: $('iottly-description').value, url: $('iottly-url').value, type: $('iottly-type').value }),
  }),
);
dialectForm('mainflux-form', 'mainflux-error', () =>
  api(`/things/${enc($('mainflux-thing').value)}/webhooks`, {
    method: 'POST',
    body: JSON.stringify([{ name: $('mainflux-name').value, url: $('mainflux-url').value }]),
  }),
);
$('log-webhook').addEventListener('change', () => attempt(loadLog));
$('log-refresh').addEventListener('click', () => attempt(loadLog));
$('events-pause').addEventListener('click', togglePause);
$('events-clear').addEventListener('click', () => {
  events = [];
  renderEvents();
});
$('events-device').addEventListener('input', renderEvents);
$('events-name').addEventListener('input', renderEvents);
$('group-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  $('group-error').textContent = '';
  try {
    await api('/v1/groups', { method: 'POST', body: JSON.stringify({ id: $('group-id').value, name: $('group-name').value }) });
    event.target.reset();
    await loadDevices();
  } catch (err) {
    if (err.status !== 401) $('group-error').textContent = err.message;
  }
});
$('device-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  $('device-error').textContent = '';
  try {
    const group = $('device-group').value || undefined;
    const name = $('device-name').value;
    const created = await api('/v1/devices', { method: 'POST', body: JSON.stringify({ id: $('device-id').value, name, group }) });
    event.target.reset();
    await loadDevices();
    showKey(created.id, created.key);
  } catch (err) {
    if (err.status !== 401) $('device-error').textContent = err.message;
  }
});

token = sessionStorage.getItem(TOKEN_KEY);
if (token) {
  // A stored token is checked by the first view's calls; a refused one
  // brings the login form back.
  enter();
} else {
  $('login').hidden = false;
}
