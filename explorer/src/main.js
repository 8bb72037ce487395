// The explorer's entry point: reads the options from the URL, routes
// #/..., and shows a failure instead of any data that does not verify.

import { el, link } from './dom.js';
import { FetchError, Log, options } from './log.js';
import { VerificationError } from './note.js';
import { UserError, entry, home, lookup } from './views.js';

const opts = options(window.location);
const log = new Log(opts);
const view = document.getElementById('view');

function header() {
  const kind = el('select', { id: 'search-kind', 'aria-label': 'what to look up' }, ['entry', 'digest', 'key', 'namespace'].map((k) => el('option', { value: k }, k)));
  const input = el('input', { id: 'search', type: 'search', placeholder: 'entry number, sha256 digest, key ID or namespace', 'aria-label': 'look up' });
  const form = el(
    'form',
    {
      onsubmit: (event) => {
        event.preventDefault();
        const value = input.value.trim();
        let what = kind.value;
        if (/^\d+$/.test(value)) what = 'entry';
        else if (value.includes('/') || (what === 'entry' && !/^[0-9a-f]{64}$/.test(value))) what = 'namespace';
        else if (what === 'entry') what = 'digest';
        window.location.hash = `#/${what}/${encodeURIComponent(value)}`;
      },
    },
    kind,
    input,
    el('button', { type: 'submit' }, 'Look up'),
  );
  return el('header', {}, link('#/', el('strong', {}, 'Stele log explorer')), el('span', { class: 'muted small', id: 'log-base' }, opts.base), form);
}

async function render() {
  const route = window.location.hash.replace(/^#\/?/, '').split('/');
  const [what, ...rest] = route;
  const value = decodeURIComponent(rest.join('/'));
  document.body.dataset.state = 'loading';
  view.replaceChildren(el('p', { class: 'muted' }, 'Reading and verifying…'));
  const content = el('div', {});
  try {
    if (what === '' || what === undefined) await home(log, content);
    else if (what === 'entry') {
      if (!/^(0|[1-9]\d*)$/.test(value)) throw new UserError('an entry is named by its index, a decimal number');
      await entry(log, content, Number(value));
    } else if (['digest', 'key', 'namespace'].includes(what)) await lookup(log, content, what, value);
    else throw new UserError(`no such page: #/${route.join('/')}`);
    view.replaceChildren(content);
    document.body.dataset.state = 'ready';
    performance.mark('stele-ready');
  } catch (err) {
    view.replaceChildren(failure(err));
    document.body.dataset.state = err instanceof VerificationError ? 'failed' : 'error';
  }
}

function failure(err) {
  if (err instanceof VerificationError) {
    return el(
      'div',
      { class: 'failure', id: 'verification-failure', role: 'alert' },
      el('h1', {}, '✗ Verification failed'),
      el('p', {}, err.message),
      el('p', {}, 'Nothing from this log is shown: what it served does not match what its key signed. Do not rely on it; report it to the log operator.'),
    );
  }
  const kind = err instanceof FetchError ? 'Could not read the log' : err instanceof UserError || err instanceof RangeError ? 'Not found' : 'Error';
  return el('div', { class: 'error', id: 'error', role: 'alert' }, el('h1', {}, kind), el('p', {}, err.message));
}

document.body.prepend(header());
window.addEventListener('hashchange', render);
render();
