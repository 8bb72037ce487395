// Drives the explorer in headless Chromium against a real log, as
// tests/tests/explorer.rs sets it up: opens each view, checks that it shows
// the log's real data (the spec file says what to expect, from the log
// itself and the test's own records), keeps a screenshot of each view, then
// puts a tampering proxy in front of the log and checks that an altered
// tile, and an altered checkpoint, make the page show a verification
// failure and none of the data (and, as the spec asks, an extension line
// added to the checkpoint, or an altered ML-DSA-44 signature line).
//
// Usage: node test/browser.mjs SPEC.json
// SPEC: {chromium, log, vkeys (or vkey), screenshots, tampers?, expect: {size,
//   root_hex, algorithms?, own_key_algorithms?, other_log_keys?,
//   entries: [{index, kind, leaf_hex, digest?, version?, namespace?, key_id?}],
//   lookups: [{what, value, indices, new_keys?}], tamper_entry}}
// The home page and the tampered views pin the `vkeys` (?vkey=, once per
// key); the entry and lookup views read the log's own log.vkey.
// `algorithms` and `own_key_algorithms` are the algorithms the page must
// say verified the checkpoint in each case.
// Prints one line per check; exits 1 on the first failure.

import { readFile, mkdir } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { chromium } from 'playwright-core';

const spec = JSON.parse(await readFile(process.argv[2], 'utf8'));
const expect = spec.expect;
const vkeys = spec.vkeys ?? (spec.vkey ? [spec.vkey] : []);
const pinned = vkeys.length ? `?${vkeys.map((v) => `vkey=${encodeURIComponent(v)}`).join('&')}` : '';
await mkdir(spec.screenshots, { recursive: true });

let checks = 0;
function check(condition, message) {
  if (!condition) {
    console.error(`FAIL: ${message}`);
    process.exit(1);
  }
  checks += 1;
}

const browser = await chromium.launch({
  executablePath: spec.chromium,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

/** Opens the explorer at `base` (the log's URL) on `hash`; returns the page once it settled. */
async function open(base, hash, query = '') {
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (err) => errors.push(err.message));
  await page.goto(`${base}explorer/${query}${hash}`);
  await page.waitForFunction(() => document.body.dataset.state !== 'loading', null, { timeout: 30000 });
  page.errors = errors;
  return page;
}

async function shot(page, name) {
  // Charts draw on the next frame.
  await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve))));
  const file = path.join(spec.screenshots, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  console.log(`screenshot ${file}`);
}

const state = (page) => page.evaluate(() => document.body.dataset.state);
const text = (page, selector) => page.$eval(selector, (n) => n.textContent).catch(() => null);
const attr = (page, selector, name) => page.$eval(selector, (n, name) => n.getAttribute(name), name).catch(() => null);
const rows = (page, selector) => page.$$eval(`${selector} tbody tr`, (trs) => trs.map((tr) => Number(tr.dataset.index)));

async function expectReady(page, what, algorithms) {
  const s = await state(page);
  const problem = s === 'ready' ? '' : await text(page, '#view');
  check(s === 'ready', `${what}: the page is ${s}, not ready: ${problem}`);
  check(page.errors.length === 0, `${what}: script errors ${page.errors.join('; ')}`);
  check((await attr(page, '#checkpoint-size', 'data-size')) === String(expect.size), `${what}: tree size shown is ${await attr(page, '#checkpoint-size', 'data-size')}, the log's is ${expect.size}`);
  check((await attr(page, '#checkpoint-root', 'data-root-hex')) === expect.root_hex, `${what}: root hash shown differs from the checkpoint's`);
  check((await attr(page, '#checkpoint-status', 'data-verified')) === 'true', `${what}: checkpoint not marked verified`);
  if (algorithms) {
    const shown = await attr(page, '#checkpoint-status', 'data-algorithms');
    check(shown === algorithms.join(','), `${what}: verified by ${shown}, expected ${algorithms.join(',')}`);
    check((await text(page, '#checkpoint .card-title')).includes(algorithms.join(' + ')), `${what}: the algorithms are not shown`);
  }
}

async function expectFailure(page, what, says) {
  const s = await state(page);
  check(s === 'failed', `${what}: the page is ${s}, not failed: ${await text(page, '#view')}`);
  const message = await text(page, '#verification-failure');
  check(message !== null && message.includes('Verification failed'), `${what}: no verification failure message`);
  if (says) check(message.includes(says), `${what}: the failure does not say ${JSON.stringify(says)}: ${message}`);
  for (const selector of ['#checkpoint-size', '#checkpoint-root', '#entry', '#latest', '#lookup', '#signers']) {
    check((await page.$(selector)) === null, `${what}: ${selector} is shown despite the failure`);
  }
  console.log(`ok ${what}: ${message.replace(/\s+/g, ' ').slice(0, 200)}`);
}

// Home.
{
  const page = await open(spec.log, '#/', pinned);
  await expectReady(page, 'home', expect.algorithms);
  if (expect.algorithms) {
    const keys = await page.$$eval('#checkpoint .log-key', (spans) => spans.map((s) => s.dataset.algorithm));
    check(JSON.stringify(keys) === JSON.stringify(expect.algorithms), `home: log keys listed ${keys}, expected ${expect.algorithms}`);
  }
  if (expect.other_log_keys !== undefined) {
    const others = await page.$$eval('#cosignatures tr[data-status="other-log-key"]', (trs) => trs.length);
    check(others === expect.other_log_keys, `home: ${others} signature lines of another log key listed, expected ${expect.other_log_keys}`);
  }
  const latest = await rows(page, '#latest');
  const want = [];
  for (let i = expect.size - 1; i >= Math.max(0, expect.size - 20); i--) want.push(i);
  check(JSON.stringify(latest) === JSON.stringify(want), `home: latest entries ${latest}, expected ${want}`);
  const proved = await page.$$eval('#latest tbody tr', (trs) => trs.filter((tr) => tr.textContent.includes('✓ proved')).length);
  check(proved === want.length, `home: ${proved} of ${want.length} latest entries marked proved`);
  for (const id of expect.home_sections ?? []) check((await page.$(`#${id} canvas, #${id} table`)) !== null, `home: section ${id} has no chart or table`);
  await shot(page, 'home');
  console.log(`ok home: size ${expect.size}, root ${expect.root_hex}, ${latest.length} latest entries proved`);
  await page.context().close();
}

// Entries, one of each kind (the log's own key, from log.vkey).
for (const e of expect.entries) {
  const page = await open(spec.log, `#/entry/${e.index}`);
  await expectReady(page, `entry ${e.index}`, expect.own_key_algorithms);
  check((await text(page, '#entry-kind')) === e.kind, `entry ${e.index}: kind ${await text(page, '#entry-kind')}, expected ${e.kind}`);
  check((await text(page, '#leaf-hash')) === e.leaf_hex, `entry ${e.index}: leaf hash ${await text(page, '#leaf-hash')}, expected ${e.leaf_hex}`);
  check((await attr(page, '#proof-status', 'data-verified')) === 'true', `entry ${e.index}: proof not verified`);
  if (e.digest) check((await text(page, '#entry-digest')).includes(e.digest), `entry ${e.index}: digest ${await text(page, '#entry-digest')}, expected ${e.digest}`);
  if (e.version) check((await text(page, '#entry-version')) === e.version, `entry ${e.index}: version`);
  if (e.key_id) check((await page.$(`#entry a[href="#/key/${e.key_id}"]`)) !== null, `entry ${e.index}: no link to signer ${e.key_id}`);
  if (e.namespace) check((await page.$(`#entry a[href="#/namespace/${encodeURIComponent(e.namespace)}"]`)) !== null, `entry ${e.index}: no namespace link`);
  if (e.text) check((await text(page, '#entry-text')) === e.text, `entry ${e.index}: text`);
  if (e.kind === 'release') check((await text(page, '#entry')).includes('✓ valid over the statement'), `entry ${e.index}: maintainer signature not shown valid`);
  await shot(page, `entry-${e.kind}`);
  console.log(`ok entry ${e.index} (${e.kind}): leaf ${e.leaf_hex}, proof verified`);
  await page.context().close();
}

// Lookups by digest, key and namespace.
for (const l of expect.lookups) {
  const hash = `#/${l.what}/${l.what === 'namespace' ? encodeURIComponent(l.value) : l.value}`;
  const page = await open(spec.log, hash);
  await expectReady(page, `${l.what} ${l.value}`, expect.own_key_algorithms);
  const table = l.what === 'namespace' ? '#versions' : '#lookup';
  const shown = (await rows(page, table)).sort((a, b) => a - b);
  check(JSON.stringify(shown) === JSON.stringify(l.indices), `${l.what} ${l.value}: entries ${shown}, expected ${l.indices}`);
  if (l.what === 'namespace') {
    const flagged = await page.$$eval('#signers tbody tr[data-new-key="true"]', (trs) => trs.map((tr) => tr.dataset.keyId));
    check(JSON.stringify(flagged) === JSON.stringify(l.new_keys), `namespace ${l.value}: new keys ${flagged}, expected ${l.new_keys}`);
    check((await page.$('#new-key-alert')) !== null || l.new_keys.length === 0, `namespace ${l.value}: no alert for the new key`);
  }
  await shot(page, `${l.what}${l.what === 'namespace' && l.new_keys.length ? '-new-key' : ''}`);
  console.log(`ok ${l.what} ${l.value}: entries ${shown.join(',')} proved`);
  await page.context().close();
}

// A tampering proxy in front of the log: `alter(path, bytes)` changes what
// it serves.
function proxy(alter) {
  const upstream = new URL(spec.log);
  const server = http.createServer(async (req, res) => {
    try {
      const answer = await fetch(new URL(req.url, upstream), { headers: { accept: req.headers.accept ?? '*/*' } });
      let body = new Uint8Array(await answer.arrayBuffer());
      if (answer.ok) body = alter(new URL(req.url, upstream).pathname, body);
      res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/octet-stream', 'cache-control': 'no-store' });
      res.end(body);
    } catch (err) {
      res.writeHead(502);
      res.end(String(err));
    }
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${server.address().port}/` })));
}

/** Rewrites the checkpoint's lines (text and signature lines). */
function alterCheckpoint(p, body, change) {
  if (p !== '/checkpoint') return body;
  const lines = new TextDecoder().decode(body).split('\n');
  change(lines);
  return new TextEncoder().encode(lines.join('\n'));
}

// Each tampering: what the proxy alters, the views opened through it, and
// what the failure must say.
const TAMPERS = {
  'altered tile': {
    alter: (p, body) => {
      // The first level-0 hash tile: leaf 0's hash, which every other leaf's
      // proof reads in a log of at most 256 entries.
      if (/^\/tile\/0\/000(\.p\/\d+)?$/.test(p)) {
        body = body.slice();
        body[3] ^= 0x01;
      }
      return body;
    },
    hashes: [`#/entry/${expect.tamper_entry}`, '#/'],
  },
  'altered checkpoint': {
    // One character of the root hash line.
    alter: (p, body) => alterCheckpoint(p, body, (lines) => (lines[2] = (lines[2][0] === 'A' ? 'B' : 'A') + lines[2].slice(1))),
    hashes: ['#/', `#/entry/${expect.tamper_entry}`],
  },
  'added extension line': {
    // ML-DSA-44 signatures do not cover extension lines: still valid, but
    // the page must not trust the line.
    alter: (p, body) => alterCheckpoint(p, body, (lines) => lines.splice(3, 0, 'an extension line added by a proxy')),
    hashes: ['#/'],
    says: 'extension line',
  },
  'altered ML-DSA-44 signature': {
    // The last byte of the ML-DSA-44 signature line (4-byte key ID, 8-byte
    // timestamp, 2,420-byte signature).
    alter: (p, body) =>
      alterCheckpoint(p, body, (lines) => {
        const at = lines.findIndex((l) => l.startsWith('\u2014 ') && Buffer.from(l.split(' ')[2], 'base64').length === 4 + 8 + 2420);
        check(at >= 0, 'the checkpoint has no ML-DSA-44 signature line to alter');
        const [dash, name, sig] = lines[at].split(' ');
        const blob = Buffer.from(sig, 'base64');
        blob[blob.length - 1] ^= 0x01;
        lines[at] = `${dash} ${name} ${blob.toString('base64')}`;
      }),
    hashes: ['#/', `#/entry/${expect.tamper_entry}`],
    says: 'ML-DSA-44 signature on the checkpoint does not verify',
  },
};

for (const name of spec.tampers ?? ['altered tile', 'altered checkpoint']) {
  const tamper = TAMPERS[name];
  check(tamper !== undefined, `no tampering named ${name}`);
  const { server, url } = await proxy(tamper.alter);
  for (const hash of tamper.hashes) {
    const page = await open(url, hash, pinned);
    await expectFailure(page, `${name}, ${hash}`, tamper.says);
    await shot(page, `tampered-${name.replaceAll(' ', '-')}-${hash === '#/' ? 'home' : 'entry'}`);
    await page.context().close();
  }
  server.close();
}

await browser.close();
console.log(`${checks} passed, 0 failed`);
