// The plugins view: state, digest, calls, errors by cause, last error and
// memory high-water mark of each plugin, and what it keeps in its own
// key-value bucket (read-only).

import { $, api, attempt, button, el, enc } from './api.js';

// Keys of a bucket shown at once.
const MAX_KEYS = 50;

function bytes(n) {
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(1)} KiB`;
  return `${n} B`;
}

export async function loadPlugins() {
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
        el('td', {}, button('State', () => attempt(() => showState(p.name)), { 'aria-label': `Key-value state of ${p.name}` })),
      );
    }),
  );
  if (plugins.length === 0) {
    $('plugins').tBodies[0].append(el('tr', {}, el('td', { colspan: '8' }, 'No plugins in the plugins directory.')));
  }
}


// The keys of plugin `name`'s own bucket, with their values as text.
async function showState(name) {
  const { keys, cursor } = await api(`/v1/plugins/${enc(name)}/kv`);
  const shown = keys.slice(0, MAX_KEYS);
  const values = await Promise.all(shown.map((k) => api(`/v1/plugins/${enc(name)}/kv/${enc(k)}`)));
  const list = el('dl', {});
  shown.forEach((k, i) => list.append(el('dt', {}, k), el('dd', {}, el('code', {}, String(values[i])))));
  $('plugin-kv').replaceChildren(
    el('h3', {}, `Key-value state of ${name} (read-only)`),
    shown.length === 0 ? el('p', {}, 'No keys.') : list,
    keys.length > MAX_KEYS || cursor ? el('p', {}, `Only the first ${MAX_KEYS} keys are shown.`) : null,
  );
}
