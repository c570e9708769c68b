// The webhooks view: every webhook of every dialect in one list with a
// Test button each, the Particle builder and JSON form (create and edit),
// the Iottly projects with their limit, and the forms of the other
// dialects.

import { $, api, attempt, button, dangerButton, el, enc, fillSelect, say } from './api.js';
import { sampleEvent, wireBuilder } from './builder.js';
import { requestView, responseView } from './exchange.js';

// Bounds on what the list asks for, whatever the fleet's size.
const MAX_GROUPS = 200;
const MAX_THINGS = 200;
const MAX_STATUS_LOOKUPS = 100;
const IOTTLY_MAX = Number(document.querySelector('meta[name="edgehook-iottly-max-webhooks"]').content);

// The rows last listed.
let webhooks = [];
// Opens the log of a webhook (set by wireWebhooks).
let openLogOf = () => {};

export function listed() {
  return webhooks;
}

// Every webhook of every dialect, as rows.
export async function allWebhooks() {
  const [all, groups, devices] = await Promise.all([
    api('/v1/webhooks'),
    api('/v1/groups'),
    api('/v1/devices'),
  ]);
  // The list holds every dialect; the others come with their scope below.
  const rows = all.filter((w) => w.dialect === 'particle').map((w) => ({
    dialect: 'Particle',
    id: w.id,
    name: w.name || '',
    filter: `event ${w.event ?? w.eventName ?? ''}` + (w.deviceID || w.deviceid ? `, device ${w.deviceID || w.deviceid}` : ''),
    url: w.url || '',
    auth: authOf(w),
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
        auth: authOf(w),
        enabled: true,
        project: w.project_id,
        raw: w,
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
    auth: authOf(w),
    enabled: true,
    raw: w,
  };
}

// Which auth webhook `w` uses (its secrets are never in a read).
function authOf(w) {
  if (!w.auth) return '';
  return w.auth.type || 'basic (Particle)';
}

// The newest delivery of webhook `id`: its status, or its error.
async function lastStatus(id) {
  const log = await api(`/v1/webhooks/${enc(id)}/log`);
  const last = log.requests[0];
  if (!last) return '–';
  if (last.response) return String(last.response.status);
  return last.error ? `error: ${last.error}` : '–';
}

export async function loadWebhooks() {
  const table = $('webhooks');
  table.setAttribute('aria-busy', 'true');
  try {
    const all = await allWebhooks();
    webhooks = all.rows;
    renderWebhooks(all);
  } finally {
    table.removeAttribute('aria-busy');
  }
}

function renderWebhooks({ rows, projects, groups, devices }) {
  const body = $('webhooks').tBodies[0];
  body.replaceChildren(
    ...rows.map((w, i) => {
      const status = el('td', {}, i < MAX_STATUS_LOOKUPS ? '…' : 'see its log');
      const actions = el('td', {}, button('Log', () => openLogOf(w.id), { 'aria-label': `Log of ${w.name || w.id}` }));
      actions.append(button('Test', () => attempt(() => testWebhook(w)), { 'aria-label': `Test ${w.name || w.id}` }));
      if (w.raw) actions.append(button('Edit', () => editWebhook(w), { 'aria-label': `Edit ${w.name || w.id}` }));
      if (w.dialect === 'Particle') {
        actions.append(
          button(w.enabled ? 'Disable' : 'Enable', () => attempt(() => toggleWebhook(w)), {
            'aria-label': `${w.enabled ? 'Disable' : 'Enable'} ${w.name || w.id}`,
          }),
        );
      }
      actions.append(
        dangerButton('Delete', `Delete the ${w.dialect} webhook ${w.name || w.id}?`, () => deleteWebhook(w), {
          'aria-label': `Delete ${w.name || w.id}`,
        }),
      );
      return el(
        'tr',
        { 'data-id': w.id },
        el('td', {}, w.dialect),
        el('td', {}, w.name),
        el('td', {}, w.filter),
        el('td', {}, el('code', {}, w.url), w.auth ? ` (auth: ${w.auth})` : null),
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
  const cut = groups.length > MAX_GROUPS || devices.filter((d) => !d.group).length > MAX_THINGS;
  $('webhooks-note').textContent = cut
    ? `Only the Iottly and Mainflux webhooks of the first ${MAX_GROUPS} groups and ${MAX_THINGS} devices in no group are listed.`
    : '';
  $('projects').replaceChildren(
    projects.length === 0
      ? el('p', {}, 'No projects: an Iottly project is a group of the device registry.')
      : el('ul', {}, ...projects.map((p) => el('li', {}, `${p.id}: ${p.count} of ${IOTTLY_MAX} webhooks${p.count >= IOTTLY_MAX ? ' (full)' : ''}`))),
  );
  fillSelect($('iottly-project'), groups.map((g) => g.id));
  fillSelect($('mainflux-thing'), devices.map((d) => d.id));
}

let editing = null;

// Fills the form with webhook `w`'s definition as the API shows it: a
// masked secret sent back unchanged keeps the stored one.
function editWebhook(w) {
  let definition;
  if (w.dialect === 'Particle') {
    definition = { ...w.raw };
    for (const k of ['id', 'created_at', 'file_error', 'dialect']) delete definition[k];
  } else if (w.dialect === 'Iottly') {
    definition = { ...w.raw };
    for (const k of ['id', 'project_id', 'dialect']) delete definition[k];
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
  $('webhook-form-title').textContent = 'New Particle webhook from its JSON';
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
    else if (editing.dialect === 'Iottly') {
      saved = await api(`/v1/projects/${enc(editing.project)}/webhooks/${enc(editing.id)}`, { method: 'PUT', body: field.value });
    }    else saved = await api(`/webhooks/${enc(editing.id)}`, { method: 'PUT', body: field.value });
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
  for (const k of ['id', 'created_at', 'file_error', 'dialect']) delete definition[k];
  if (w.enabled) definition.disabled = true;
  else delete definition.disabled;
  await api(`/v1/webhooks/${enc(w.id)}`, { method: 'PUT', body: JSON.stringify(definition) });
  say(`${w.enabled ? 'Disabled' : 'Enabled'} webhook ${w.id}.`);
  await loadWebhooks();
}

// Sends the builder's sample event (its defaults where it is empty)
// through webhook `w` and shows the first attempt: its request and its
// response or error.
async function testWebhook(w) {
  const out = $('webhook-test');
  const label = `${w.dialect} webhook ${w.name || w.id}`;
  out.dataset.state = 'pending';
  out.replaceChildren(el('p', {}, `Testing the ${label}…`));
  let answer;
  try {
    answer = await api(`/v1/webhooks/${enc(w.id)}/test`, { method: 'POST', body: JSON.stringify(sampleEvent()) });
  } catch (err) {
    if (err.status === 401) return;
    out.replaceChildren(el('h3', {}, `Test of the ${label}`), el('p', { class: 'error' }, `Failed: ${err.message}`));
    out.dataset.state = 'failed';
    return;
  }
  const a = answer.attempt;
  out.replaceChildren(
    el('h3', {}, `Test of the ${label}`),
    el(
      'p',
      { class: 'summary' },
      `Event ${answer.event_id}, attempt ${a.attempt}: ${a.outcome}`,
      a.response ? `, status ${a.response.status}` : '',
      ` after ${a.duration_ms} ms.`,
    ),
    a.request ? requestView(a.request) : null,
    a.response ? responseView(a.response) : null,
    a.error ? el('p', { class: 'error' }, `Error: ${a.error}`) : null,
  );
  out.dataset.state = 'done';
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

// Wires the view's forms; `showLog(id)` opens the log of webhook `id`.
export function wireWebhooks(showLog) {
  openLogOf = showLog;
  wireBuilder(() => loadWebhooks());
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
}
