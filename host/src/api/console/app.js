// The edgehook console: one page over the HTTP API.
//
// Every call carries `Authorization: Bearer TOKEN`; the token lives in this
// tab's sessionStorage, never in a URL. Everything the API returns is
// rendered with textContent (never as HTML), and secrets come masked from
// the API. This module logs in and out and switches views; each view is a
// module of its own.

import { $, attempt, onUnauthorized, say, session } from './api.js';
import { openDevices, wireDevices } from './devices.js';
import { openEvents, wireEvents } from './events.js';
import { openHealth } from './health.js';
import { openHistory, wireHistory } from './history.js';
import { loadLog, openLog, wireLog } from './log.js';
import { loadPlugins } from './plugins.js';
import { loadWebhooks, wireWebhooks } from './webhooks.js';

const TOKEN_KEY = 'edgehook.token';

// What to do on leaving the current view.
let leave = () => {};
// Counts the views opened, so that a view's loader that finishes after
// another view was opened cleans up after itself at once.
let generation = 0;

// Logging in and out.

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
  session.token = candidate;
  sessionStorage.setItem(TOKEN_KEY, candidate);
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
  generation += 1;
  session.token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  for (const s of document.querySelectorAll('main > section')) s.hidden = true;
  $('nav').hidden = true;
  $('login').hidden = false;
  $('login-error').textContent = message;
  say('');
  $('token').focus();
}

// The views.

const views = {
  webhooks: loadWebhooks,
  log: openLog,
  history: openHistory,
  events: openEvents,
  plugins: loadPlugins,
  devices: openDevices,
  health: openHealth,
};

// Shows view `name`; its loader returns what to do on leaving it.
async function show(name) {
  leave();
  leave = () => {};
  say('');
  for (const s of document.querySelectorAll('main > section')) s.hidden = s.id !== `view-${name}`;
  for (const b of document.querySelectorAll('#nav [data-view]')) {
    if (b.dataset.view === name) b.setAttribute('aria-current', 'page');
    else b.removeAttribute('aria-current');
  }
  const shown = ++generation;
  await attempt(async () => {
    const onLeave = (await views[name]()) || (() => {});
    // Another view (or the login form) may have been opened meanwhile.
    if (shown === generation) leave = onLeave;
    else onLeave();
  });
}

function showLog(id) {
  show('log').then(() => {
    $('log-webhook').value = id;
    return attempt(loadLog);
  });
}

$('login').addEventListener('submit', login);
$('logout').addEventListener('click', () => logout());
for (const b of document.querySelectorAll('#nav [data-view]')) {
  b.addEventListener('click', () => {
    show(b.dataset.view);
    // Keyboard and screen-reader users land on the view they opened.
    document.querySelector(`#view-${b.dataset.view} h2`).focus();
  });
}
onUnauthorized(logout);
wireWebhooks(showLog);
wireLog();
wireHistory();
wireEvents();
wireDevices();

session.token = sessionStorage.getItem(TOKEN_KEY);
if (session.token) {
  // A stored token is checked by the first view's calls; a refused one
  // brings the login form back.
  enter();
} else {
  $('login').hidden = false;
}
