// The health view: `/healthz`, and from `/metrics` every few seconds the
// events and failed requests per second, drawn as small SVG lines.

import { $, api, attempt, el } from './api.js';

const HEALTH_POINTS = 60;
const HEALTH_PERIOD_MS = 5000;

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

export async function openHealth() {
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

