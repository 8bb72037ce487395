// The views. Each renders into `view` only data that verified; any
// verification failure is thrown, and the router replaces the whole view
// with the failure.

import { toBase64, toHex } from './bytes.js';
import { bucketChart, growthChart, kindsChart } from './charts.js';
import { el, link, number, short, table } from './dom.js';
import { namespacePath, validNamespace } from './entry.js';
import { hex8, VerificationError } from './note.js';

/** Most entries of one lookup fetched and proved (the latest ones). */
export const LOOKUP_LIMIT = 50;
/** Most entries of one namespace fetched for its page. */
export const NAMESPACE_LIMIT = 500;
/** Entries shown on the home page. */
export const LATEST = 20;

const badge = (text, cls = 'ok') => el('span', { class: `badge ${cls}` }, text);

function section(title, ...children) {
  return el('section', {}, el('h2', {}, title), ...children);
}

/** A POSIX time as ISO 8601 (UTC), or the number when no date can show it. */
export function isoTime(seconds) {
  if (!Number.isSafeInteger(seconds) || seconds > 253402300799) return `${seconds} (POSIX seconds)`;
  return new Date(seconds * 1000).toISOString().replace('.000Z', 'Z');
}

/** The verified checkpoint, as every view shows it at the top. */
export function checkpointCard(cp, full = false) {
  const rootHex = toHex(cp.root);
  const algorithms = cp.algorithms.join(' + ');
  const rows = [
    ['origin', el('code', { id: 'checkpoint-origin' }, cp.origin)],
    ['tree size', el('strong', { id: 'checkpoint-size', 'data-size': cp.size }, number(cp.size))],
    ['root hash', el('code', { id: 'checkpoint-root', 'data-root-hex': rootHex }, toBase64(cp.root)), el('br'), el('code', { class: 'small' }, rootHex)],
  ];
  if (full) {
    for (const v of cp.verifiedBy) {
      rows.push([
        'log key',
        el('span', { class: 'log-key', 'data-algorithm': v.algorithm }, `${v.name} (${v.algorithm}, key ID ${hex8(v.id)})`, v.time !== null ? `, signed at ${isoTime(v.time)}` : ''),
      ]);
    }
    rows.push(['key source', cp.keySource]);
    for (const line of cp.extensions) rows.push(['extension', el('code', {}, line)]);
  }
  return el(
    'div',
    { class: 'card', id: 'checkpoint' },
    el(
      'div',
      { class: 'card-title' },
      'Checkpoint ',
      badge(`✓ signature verified: ${algorithms}`, 'ok'),
      ' ',
      el('span', { id: 'checkpoint-status', 'data-verified': 'true', 'data-algorithms': cp.algorithms.join(',') }),
    ),
    el('dl', {}, rows.map(([k, ...v]) => [el('dt', {}, k), el('dd', {}, ...v)])),
    full ? cosignatureList(cp.cosignatures) : null,
  );
}

const COSIGNATURE_STATUS = {
  verified: () => badge('✓ verified', 'ok'),
  missing: () => badge('missing', 'warn'),
  'other-log-key': () => badge('another key of this log, not checked (pin it with ?vkey=)', 'muted'),
  unknown: () => badge('not checked (no ?witness= key)', 'muted'),
};

function cosignatureList(cosignatures) {
  if (cosignatures.length === 0) {
    return el('p', { class: 'muted', id: 'cosignatures' }, 'No witness cosignatures on this checkpoint; none asked for (?witness=<vkey>).');
  }
  return el(
    'div',
    { id: 'cosignatures' },
    el('h3', {}, 'Other signatures and witness cosignatures'),
    table(
      ['signer', 'key ID', 'algorithm', 'status', 'time'],
      cosignatures.map((c) => [c.name, el('code', {}, hex8(c.id)), c.algorithm, COSIGNATURE_STATUS[c.status](), c.time ? isoTime(c.time) : '']),
      (_, k) => ({ 'data-status': cosignatures[k].status, 'data-name': cosignatures[k].name }),
    ),
  );
}

/** One line of summary for an entry. */
export function summary(decoded) {
  switch (decoded.kind) {
    case 'hashedrekord':
      return [`${decoded.algorithm} `, el('code', {}, short(decoded.digest)), ' signed by ', keyLink(decoded.keyId)];
    case 'release':
      if (decoded.problem && !decoded.namespace) return el('span', { class: 'bad' }, `malformed release statement: ${decoded.problem}`);
      return [nsLink(decoded.namespace), ` ${decoded.version} `, el('code', {}, decoded.file), ' by ', keyLink(decoded.keyId)];
    default:
      return decoded.text !== null ? el('code', {}, short(decoded.text.replace(/\s+/g, ' '), 60)) : `${decoded.size} bytes`;
  }
}

const keyLink = (id) => (id ? link(`#/key/${id}`, el('code', {}, short(id))) : 'an unknown key');
const nsLink = (ns) => link(`#/namespace/${encodeURIComponent(ns)}`, ns);
const entryLink = (i) => link(`#/entry/${i}`, String(i));
const proved = () => badge('✓ proved', 'ok');

function entryRow(e) {
  return [entryLink(e.index), el('span', { class: `kind ${e.decoded.kind}` }, e.decoded.kind), summary(e.decoded), proved()];
}

/** Runs `work` over `items`, `limit` at a time, in order. */
export async function pool(items, limit, work) {
  const out = new Array(items.length);
  let next = 0;
  const runners = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const k = next++;
      out[k] = await work(items[k]);
    }
  });
  await Promise.all(runners);
  return out;
}

const MONTHS_HOURS = (s) => s.slice(5, 13).replace('T', ' ') + 'h';
const DAYS = (s) => s.slice(0, 10);

export async function home(log, view) {
  const cp = await log.checkpoint();
  view.append(el('h1', {}, 'Log ', el('code', {}, cp.origin)), checkpointCard(cp, true));
  performance.mark('stele-first-render');
  const stats = el('div', { class: 'grid' });
  const latest = el('div', { id: 'latest' }, el('p', { class: 'muted' }, 'Reading the latest entries…'));
  view.append(section('Activity', stats), section('Latest entries', latest));

  const [history, hourly, daily, summaryJson] = await Promise.all([
    loadHistory(log),
    log.getJson('stats/v1/hourly.json').catch(() => null),
    log.getJson('stats/v1/daily.json').catch(() => null),
    log.getJson('stats/v1/summary.json').catch(() => null),
  ]);
  const note = (json) => (json ? el('p', { class: 'muted small' }, `computed at tree size ${number(json.tree_size)}; recompute from the log to check`) : null);
  const card = (title, id, body) => el('div', { class: 'card', id }, el('div', { class: 'card-title' }, title), body ?? el('p', { class: 'muted' }, 'not published yet'));
  stats.append(
    card('Growth (checkpoint history)', 'growth', history.length ? [growthChart('growth-chart', history), el('p', { class: 'muted small' }, `${history.length} snapshots in history/`)] : null),
    card('Entries per hour', 'hourly', hourly?.buckets?.length ? [bucketChart('hourly-chart', hourly.buckets, 'entries per hour', MONTHS_HOURS), note(hourly)] : null),
    card('Entries per day', 'daily', daily?.buckets?.length ? [bucketChart('daily-chart', daily.buckets, 'entries per day', DAYS), note(daily)] : null),
    card('Entries by kind', 'kinds', summaryJson?.kinds ? [kindsChart('kinds-chart', summaryJson.kinds), note(summaryJson)] : null),
    card('Top signers', 'top-signers', summaryJson?.top_signers ? table(['key ID', 'entries'], summaryJson.top_signers.slice(0, 10).map((s) => [keyLink(s.key_id), number(s.entries)])) : null),
    card('Top namespaces', 'top-namespaces', summaryJson?.top_namespaces ? table(['namespace', 'entries'], summaryJson.top_namespaces.slice(0, 10).map((s) => [nsLink(s.namespace), number(s.entries)])) : null),
  );

  // The latest entries: the last bundle, and the one before when it is short.
  const first = Math.max(0, cp.size - LATEST);
  const indices = [];
  for (let i = cp.size - 1; i >= first; i--) indices.push(i);
  const entries = await pool(indices, 6, (i) => log.entry(i));
  latest.replaceChildren(
    entries.length
      ? table(['entry', 'kind', 'what', 'inclusion'], entries.map(entryRow), (_, k) => ({ 'data-index': entries[k].index }))
      : el('p', { class: 'muted' }, 'The log is empty.'),
  );
}

async function loadHistory(log) {
  const year = new Date().getUTCFullYear();
  const points = [];
  for (const y of [year - 1, year]) {
    const text = await log.getText(`history/${y}`).catch(() => null);
    if (!text) continue;
    for (const line of text.split('\n')) {
      const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ) (0|[1-9]\d*)$/.exec(line);
      if (m) points.push({ time: m[1], size: Number(m[2]) });
    }
  }
  return points;
}

export async function entry(log, view, index) {
  const cp = await log.checkpoint();
  const e = await log.entry(index);
  const d = e.decoded;
  const fields = [['kind', el('span', { class: `kind ${d.kind}`, id: 'entry-kind' }, d.kind)]];
  if (d.kind === 'hashedrekord') {
    fields.push(
      ['artifact digest', el('code', { id: 'entry-digest' }, `${d.algorithm} ${d.digest}`), ' ', d.algorithm === 'SHA2_256' ? link(`#/digest/${d.digest}`, 'other entries') : null],
      ['signer key ID', keyLink(d.keyId), ` (${d.keySource}, ${d.keyDetails})`],
      ['signature', el('code', { class: 'small wrap' }, d.signature)],
    );
  } else if (d.kind === 'release' && d.namespace) {
    fields.push(
      ['namespace', nsLink(d.namespace)],
      ['version', el('strong', { id: 'entry-version' }, d.version)],
      ['file', el('code', {}, d.file)],
      ['sha256', el('code', { id: 'entry-digest' }, d.digest), ' ', link(`#/digest/${d.digest}`, 'other entries')],
      ['signer key ID', keyLink(d.keyId), ` (${d.algorithm})`],
      ['maintainer signature', d.signatureValid ? badge('✓ valid over the statement', 'ok') : badge('✗ does not verify', 'bad')],
    );
  } else if (d.kind === 'release') {
    fields.push(['problem', el('span', { class: 'bad' }, d.problem)]);
  } else if (d.text !== null) {
    fields.push(['text', el('pre', { id: 'entry-text' }, d.text.slice(0, 4096))]);
  }
  fields.push(['size', `${number(e.bytes.length)} bytes`], ['bytes (hex)', el('pre', { class: 'small wrap', id: 'entry-hex' }, toHex(e.bytes.subarray(0, 1024)) + (e.bytes.length > 1024 ? '…' : ''))]);
  view.append(
    el('h1', {}, 'Entry ', el('span', { id: 'entry-index' }, String(index))),
    el('div', { class: 'card', id: 'entry' }, el('dl', {}, fields.map(([k, ...v]) => [el('dt', {}, k), el('dd', {}, ...v)]))),
    el(
      'div',
      { class: 'card', id: 'proof' },
      el('div', { class: 'card-title' }, 'Inclusion ', badge('✓ proof verified', 'ok'), el('span', { id: 'proof-status', 'data-verified': 'true' })),
      el('p', {}, `Leaf hash SHA-256(0x00 ‖ entry), ${e.proof.length} proof hashes read from the tiles, lead to the root of the signed checkpoint of size ${number(cp.size)}.`),
      el('dl', {}, el('dt', {}, 'leaf hash'), el('dd', {}, el('code', { id: 'leaf-hash' }, toHex(e.leaf)))),
      el('ol', { class: 'proof small', start: 0 }, e.proof.map((p) => el('li', {}, el('code', {}, toHex(p))))),
    ),
    checkpointCard(cp),
  );
  performance.mark('stele-first-render');
}

/** What an index lookup checks of each listed entry. */
const MATCHES = {
  digest: (d, hex) => (d.kind === 'hashedrekord' && d.algorithm === 'SHA2_256' && d.digest === hex) || (d.kind === 'release' && d.digest === hex),
  key: (d, id) => (d.kind === 'hashedrekord' || d.kind === 'release') && d.keyId === id,
  namespace: (d, ns) => d.kind === 'release' && d.namespace === ns,
};

const LOOKUP_PATH = {
  digest: (hex) => `index/sha256/${hex}`,
  key: (id) => `index/key/${id}`,
  namespace: namespacePath,
};

/** Reads an index, fetches and proves each listed entry and checks it is about `value`. */
async function lookupEntries(log, what, value, limit) {
  const cp = await log.checkpoint();
  const listed = await log.index(LOOKUP_PATH[what](value));
  const inTree = listed.filter((i) => i < cp.size);
  const shown = inTree.slice(-limit);
  const entries = await pool(shown, 6, (i) => log.entry(i));
  for (const e of entries) {
    if (e.decoded.kind === 'release' && !e.decoded.signatureValid) {
      throw new VerificationError(`entry ${e.index} claims to be a release statement, but ${e.decoded.problem}`);
    }
    if (!MATCHES[what](e.decoded, value)) {
      throw new VerificationError(`the ${what} index lists entry ${e.index}, but that entry is not about ${what} ${value}: the index lies`);
    }
  }
  return { cp, listed, inTree, entries };
}

export async function lookup(log, view, what, value) {
  if (what === 'digest' && !/^[0-9a-f]{64}$/.test(value)) throw new UserError('a SHA-256 digest is 64 lowercase hex digits');
  if (what === 'key' && !/^[0-9a-f]{64}$/.test(value)) throw new UserError('a key ID is 64 lowercase hex digits (SHA-256 of the key’s DER SubjectPublicKeyInfo)');
  if (what === 'namespace') return namespace(log, view, value);
  const { cp, listed, inTree, entries } = await lookupEntries(log, what, value, LOOKUP_LIMIT);
  view.append(
    el('h1', {}, what === 'digest' ? 'Artifact ' : 'Signer ', el('code', { class: 'wrap' }, value)),
    countLine(listed, inTree, entries),
    entries.length
      ? el('div', { class: 'card', id: 'lookup' }, table(['entry', 'kind', 'what', 'inclusion'], entries.slice().reverse().map(entryRow), (_, k) => ({ 'data-index': entries[entries.length - 1 - k].index })))
      : el('p', { id: 'lookup', class: 'muted' }, 'No entries.'),
    checkpointCard(cp),
  );
  performance.mark('stele-first-render');
}

function countLine(listed, inTree, entries) {
  const extra = listed.length - inTree.length;
  return el(
    'p',
    { id: 'lookup-count', 'data-count': inTree.length },
    `${number(inTree.length)} entries in the verified tree`,
    entries.length < inTree.length ? `; the latest ${entries.length} fetched and proved` : ', each fetched and proved',
    extra > 0 ? ` (${extra} more are newer than this checkpoint)` : '',
    '.',
  );
}

export async function namespace(log, view, ns) {
  if (!validNamespace(ns)) throw new UserError(`${JSON.stringify(ns)} is not a namespace (lowercase segments of a-z 0-9 . _ - @ + separated by /)`);
  const { cp, listed, inTree, entries } = await lookupEntries(log, 'namespace', ns, NAMESPACE_LIMIT);
  // Signers in order of first appearance; every key after the first is new
  // to the namespace from its first statement on.
  const signers = new Map();
  for (const e of entries) {
    const s = signers.get(e.decoded.keyId) ?? { keyId: e.decoded.keyId, first: e.index, last: e.index, count: 0, algorithm: e.decoded.algorithm, firstVersion: e.decoded.version };
    s.last = e.index;
    s.count += 1;
    signers.set(e.decoded.keyId, s);
  }
  const order = [...signers.values()];
  const isNew = (s) => order.indexOf(s) > 0;
  const newKeys = order.filter(isNew);
  view.append(
    el('h1', {}, 'Namespace ', el('code', { id: 'namespace-name' }, ns)),
    countLine(listed, inTree, entries),
    newKeys.length
      ? el('div', { class: 'alert', id: 'new-key-alert' }, `⚠ ${newKeys.length === 1 ? 'A key' : `${newKeys.length} keys`} signed for this namespace after another key had: `, newKeys.map((s, k) => [k ? ', ' : '', el('code', {}, short(s.keyId)), ` from entry ${s.first} (version ${s.firstVersion})`]), '. Check that the maintainers meant to change keys.')
      : null,
    el(
      'div',
      { class: 'card', id: 'signers' },
      el('div', { class: 'card-title' }, 'Signers'),
      table(
        ['key ID', 'algorithm', 'statements', 'first entry', 'last entry', ''],
        order.map((s) => [keyLink(s.keyId), s.algorithm, number(s.count), entryLink(s.first), entryLink(s.last), isNew(s) ? badge('new key for this namespace', 'warn') : badge('first key', 'muted')]),
        (_, k) => ({ class: isNew(order[k]) ? 'new-key' : null, 'data-key-id': order[k].keyId, 'data-new-key': isNew(order[k]) ? 'true' : 'false' }),
      ),
    ),
    el(
      'div',
      { class: 'card', id: 'versions' },
      el('div', { class: 'card-title' }, 'Versions'),
      table(
        ['entry', 'version', 'file', 'sha256', 'signer', 'signature', 'inclusion'],
        entries.slice().reverse().map((e) => {
          const d = e.decoded;
          const s = signers.get(d.keyId);
          return [
            entryLink(e.index),
            el('strong', {}, d.version),
            el('code', {}, d.file),
            link(`#/digest/${d.digest}`, el('code', {}, short(d.digest))),
            [keyLink(d.keyId), isNew(s) ? [' ', badge('new key', 'warn')] : null],
            d.signatureValid ? badge('✓ valid', 'ok') : badge('✗ bad', 'bad'),
            proved(),
          ];
        }),
        (cells, k) => {
          const e = entries[entries.length - 1 - k];
          return { 'data-index': e.index, 'data-version': e.decoded.version, class: isNew(signers.get(e.decoded.keyId)) ? 'new-key' : null };
        },
      ),
    ),
    checkpointCard(cp),
  );
  performance.mark('stele-first-render');
}

/** A mistake in what the reader asked for (not a verification failure). */
export class UserError extends Error {}
