// Measures the explorer in headless Chromium: bytes downloaded (the
// encoded sizes the DevTools protocol reports for every response) and the
// time from navigation to the verified view being shown (the page's
// `stele-ready` mark), for each page given, each in a new browser context
// (a cold cache) and then once more in the same context (a warm cache).
//
// Usage: node test/bench.mjs CHROMIUM LOG_URL RUNS HASH...
// Prints one JSON object per page and cache state.
import { chromium } from 'playwright-core';

const [executablePath, log, runsText, ...hashes] = process.argv.slice(2);
const runs = Number(runsText);
const browser = await chromium.launch({
  executablePath,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

async function load(page, cdp, url) {
  const sizes = new Map();
  const onFinished = (e) => sizes.set(e.requestId, e.encodedDataLength);
  cdp.on('Network.loadingFinished', onFinished);
  const urls = [];
  const onRequest = (e) => urls.push(e.request.url);
  cdp.on('Network.requestWillBeSent', onRequest);
  await page.goto(url);
  await page.waitForFunction(() => document.body.dataset.state !== 'loading', null, { timeout: 120000 });
  const state = await page.evaluate(() => document.body.dataset.state);
  if (state !== 'ready') throw new Error(`${url}: the page is ${state}: ${await page.textContent('#view')}`);
  const ms = await page.evaluate(() => performance.getEntriesByName('stele-ready')[0].startTime);
  // Responses still finishing (none expected once ready).
  await new Promise((resolve) => setTimeout(resolve, 200));
  cdp.off('Network.loadingFinished', onFinished);
  cdp.off('Network.requestWillBeSent', onRequest);
  const bytes = [...sizes.values()].reduce((a, b) => a + b, 0);
  const log = urls.filter((u) => !u.includes('/explorer/'));
  return { ms, bytes, requests: urls.length, log_requests: log.length, log_urls: log };
}

const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];

for (const hash of hashes) {
  const cold = [];
  const warm = [];
  for (let r = 0; r < runs; r++) {
    const context = await browser.newContext();
    const page = await context.newPage();
    const cdp = await context.newCDPSession(page);
    await cdp.send('Network.enable');
    cold.push(await load(page, cdp, `${log}explorer/${hash}`));
    // Same context, new document: the immutable tiles come from the cache.
    await page.goto('about:blank');
    warm.push(await load(page, cdp, `${log}explorer/${hash}`));
    await context.close();
  }
  for (const [cache, results] of [['cold', cold], ['warm', warm]]) {
    console.log(
      JSON.stringify({
        page: hash,
        cache,
        runs,
        median_ms: Math.round(median(results.map((r) => r.ms))),
        ms: results.map((r) => Math.round(r.ms)),
        bytes: median(results.map((r) => r.bytes)),
        requests: results[0].requests,
        log_requests: results[0].log_requests,
        log_urls: results[0].log_urls.map((u) => u.replace(log, '')),
      }),
    );
  }
}
await browser.close();
