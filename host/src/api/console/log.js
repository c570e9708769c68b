// The log view: a webhook's last requests and errors, as the API shows
// them (secrets masked).

import { $, api, attempt, el, enc, fillSelect } from './api.js';
import { requestView, responseView } from './exchange.js';
import { allWebhooks, listed } from './webhooks.js';

export async function openLog() {
  const webhooks = listed().length > 0 ? listed() : (await allWebhooks()).rows;
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

export async function loadLog() {
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
    if (e.request) item.append(requestView(e.request));
    if (e.response) item.append(responseView(e.response));
    if (e.error) item.append(el('p', { class: 'error' }, `Error: ${e.error}`));
    return item;
  });
}

export function wireLog() {
  $('log-webhook').addEventListener('change', () => attempt(loadLog));
  $('log-refresh').addEventListener('click', () => attempt(loadLog));
}
