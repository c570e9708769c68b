// The devices view: the registry's groups and devices. A device's key is
// shown once, when it is created or rotated, and taken off the page when
// the view is left.

import { $, api, attempt, button, dangerButton, el, enc } from './api.js';

function hideKey() {
  $('new-key').hidden = true;
  $('new-key').textContent = '';
}

function showKey(device, key) {
  const out = $('new-key');
  out.replaceChildren(`Key of ${device} (shown once, copy it now): `, el('code', {}, key));
  out.hidden = false;
}

export async function loadDevices() {
  const [groups, devices] = await Promise.all([api('/v1/groups'), api('/v1/devices')]);
  $('groups').replaceChildren(
    ...groups.map((g) =>
      el(
        'li',
        {},
        `${g.id}${g.name ? ` (${g.name})` : ''} `,
        dangerButton('Delete', `Delete group ${g.id}?`, () => api(`/v1/groups/${enc(g.id)}`, { method: 'DELETE' }).then(loadDevices), {
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
          dangerButton('Delete', `Delete device ${d.id}? Its key stops working.`, () => api(`/v1/devices/${enc(d.id)}`, { method: 'DELETE' }).then(loadDevices), {
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

// Opens the view; what it returns hides the key on leaving.
export async function openDevices() {
  await loadDevices();
  return hideKey;
}

export function wireDevices() {
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
}
