// The plugins view: state, digest, calls, errors by cause, last error and
// memory high-water mark of each plugin.

import { $, api, el } from './api.js';

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
      );
    }),
  );
  if (plugins.length === 0) {
    $('plugins').tBodies[0].append(el('tr', {}, el('td', { colspan: '7' }, 'No plugins in the plugins directory.')));
  }
}

