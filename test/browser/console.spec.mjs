// Drives Sluice's web console in headless Chromium (Debian's /usr/bin/chromium)
// with playwright-core. Run by test/console_test.go, which starts a real
// server and makes the state checked here:
//   queues orders (5 messages order-1..5), payments (3), inbox, scratch,
//   ticks (live traffic) and SLUICE_QUEUES in all; exchange orders.x bound
//   to orders; topic events (3 × 100 records); group billing with lag 150.
// Environment: SLUICE_URL (the console), SLUICE_SHOTS (screenshot folder),
// SLUICE_QUEUES (how many queues exist).
import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';
import path from 'node:path';

const URL = process.env.SLUICE_URL;
const SHOTS = process.env.SLUICE_SHOTS;
const QUEUES = Number(process.env.SLUICE_QUEUES);
const BINDINGS = Number(process.env.SLUICE_BINDINGS);
if (!URL || !SHOTS || !QUEUES) {
  console.error('set SLUICE_URL, SLUICE_SHOTS and SLUICE_QUEUES');
  process.exit(2);
}
const AUTH = 'Basic ' + Buffer.from('guest:guest').toString('base64');

async function api(method, p, body) {
  const r = await fetch(new globalThis.URL(p, URL), {
    method, headers: { Authorization: AUTH, 'Content-Type': 'application/json' },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium', headless: true,
  // Root in a container has no user namespaces for Chromium's sandbox.
  args: ['--no-sandbox', '--disable-dev-shm-usage', '--font-render-hinting=none'],
});
const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, deviceScaleFactor: 1, colorScheme: 'light' });
const page = await context.newPage();
page.setDefaultTimeout(20000);
const pageErrors = [];
page.on('pageerror', (e) => pageErrors.push('page error: ' + e.message));
page.on('console', (m) => { if (m.type() === 'error') pageErrors.push('console error: ' + m.text()); });

let passed = 0, failed = 0;
async function step(name, f) {
  const t0 = Date.now();
  try {
    await f();
    passed++;
    console.log(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e.stack || e}`);
    await page.screenshot({ path: path.join(SHOTS, '..', '..', 'test', 'browser', `failure-${passed + failed}.png`) }).catch(() => {});
  }
}
const shot = (name, fullPage = false) => page.screenshot({ path: path.join(SHOTS, name + '.png'), fullPage });
const go = async (hash) => { await page.goto(URL + hash); };
const num = (s) => Number(String(s).replace(/[^0-9.-]/g, ''));
const statValue = (label) => page.locator(`[data-stat="${label}"]`).innerText();

await step('a wrong password is refused with a clear message', async () => {
  await page.goto(URL);
  await page.fill('input[name=username]', 'guest');
  await page.fill('input[name=password]', 'wrong');
  await page.click('button[type=submit]');
  await page.waitForFunction(() => document.querySelector('.login-error')?.textContent.includes('Login refused'));
  assert.match(await page.locator('.login-error').innerText(), /Login failed/);
  assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'bad credentials must not be kept');
});

await step('login as guest shows the overview', async () => {
  await page.fill('input[name=password]', 'guest');
  await page.click('button[type=submit]');
  await page.waitForSelector('h1:text("Overview")');
  assert.equal(await page.locator('#who').innerText(), 'guest');
});

await step('overview totals match the API', async () => {
  await page.waitForFunction(() => document.querySelector('[data-stat="Queues"]'));
  const o = (await api('GET', '/api/overview')).body;
  assert.equal(num(await statValue('Queues')), o.object_totals.queues);
  assert.equal(o.object_totals.queues, QUEUES);
  assert.equal(num(await statValue('Topics')), o.kafka_totals.topics);
});

await step('overview charts render with live data', async () => {
  // Rates need two samples of the counters; the test's traffic makes them non-zero.
  await page.waitForFunction(() => {
    const c = (id) => document.getElementById('chart-' + id)?.dataset;
    return Number(c('rates')?.max) > 0 && Number(c('rates')?.points) >= 3
      && Number(c('backlog')?.max) >= 5 && Number(c('produce')?.max) > 0
      && Number(c('lag')?.max) >= 150 && Number(c('bytes')?.max) > 0;
  }, null, { timeout: 45000 });
  const legend = await page.locator('#chart-lag .chart-legend').innerText();
  assert.match(legend, /billing/, 'lag chart names the group');
  const backlogLegend = await page.locator('#chart-backlog .chart-legend').innerText();
  assert.match(backlogLegend, /orders 5/);
  // The canvas was actually drawn on (not blank).
  const inked = await page.evaluate(() => {
    const c = document.querySelector('#chart-rates canvas');
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
    return n;
  });
  assert.ok(inked > 1000, `rates canvas has ${inked} painted pixels`);
  await page.waitForTimeout(4000); // a few more samples for a nicer picture
  await shot('overview', true);
});

await step(`queue list shows all ${QUEUES} queues, paged, with the right counts`, async () => {
  const t0 = Date.now();
  await go('#/queues');
  await page.waitForFunction((n) => document.querySelector('[data-table=queues]')?.dataset.total === String(n), QUEUES);
  console.log(`     queue list with ${QUEUES} queues rendered in ${Date.now() - t0} ms`);
  const rows = await page.locator('[data-table=queues] tbody tr').count();
  assert.equal(rows, 50, 'one page of rows in the DOM');
  assert.match(await page.locator('.pager').innerText(), new RegExp(`page 1 / ${Math.ceil(QUEUES / 50)}`));
  const t1 = Date.now();
  await page.fill('[data-table=queues] input.filter', 'orders');
  await page.waitForFunction(() => document.querySelector('[data-table=queues]').dataset.matching === '1');
  console.log(`     filtering ${QUEUES} queues took ${Date.now() - t1} ms`);
  const cells = await page.locator('[data-table=queues] tbody tr').first().locator('td').allInnerTexts();
  assert.equal(cells[0], 'orders');
  assert.equal(num(cells[3]), 5, 'ready');
  assert.equal(num(cells[4]), 0, 'unacked');
  assert.equal(num(cells[5]), 5, 'total');
  await page.fill('[data-table=queues] input.filter', '/^(orders|payments)$/');
  await page.waitForFunction(() => document.querySelector('[data-table=queues]').dataset.matching === '2');
  await page.fill('[data-table=queues] input.filter', '');
  await page.click('[data-table=queues] th:text("Total")'); // biggest first
  // The topics' partition queues hold the most (100 records and more),
  // then orders with 5: the page is in descending order of totals.
  await page.waitForFunction(() => {
    const totals = [...document.querySelectorAll('[data-table=queues] tbody tr')]
      .map((tr) => Number(tr.querySelectorAll('td')[5]?.textContent.replace(/[^0-9]/g, '')));
    const names = [...document.querySelectorAll('[data-table=queues] tbody tr td a')].map((a) => a.textContent);
    return totals.length > 6 && totals[0] >= 100 && totals.every((v, i) => i === 0 || v <= totals[i - 1])
      && names.indexOf('orders') > 0 && names.slice(0, names.indexOf('orders')).every((n) => /^(events|clicks)-\d$/.test(n));
  });
  await page.waitForTimeout(1500);
  await shot('queues');
});

await step('queue detail: get messages shows the published body, requeued', async () => {
  await go('#/queues/%2F/orders');
  await page.waitForFunction(() => document.querySelector('.stats')?.dataset.ready === '5');
  await page.selectOption('select[name=ackmode]', 'ack_requeue_true');
  await page.fill('input[name=count]', '2');
  await page.click('button:text("Get messages")');
  await page.waitForSelector('[data-message="2"]');
  assert.equal(await page.locator('[data-message="1"] pre.payload').innerText(), 'order-1');
  assert.equal(await page.locator('[data-message="2"] pre.payload').innerText(), 'order-2');
  const q = (await api('GET', '/api/queues/%2F/orders')).body;
  assert.equal(q.messages_ready, 5, 'a requeueing get leaves the messages');
  await page.waitForFunction(() => Number(document.querySelector('.charts .chart')?.dataset.points) >= 2);
  await shot('queue');
});

await step('live curves: a queue and a topic show 1 s inflow, outflow and backlog from /api/live', async () => {
  // ticks has a publisher (about 50/s) and a consumer that acks.
  await go('#/queues/%2F/ticks');
  await page.waitForFunction(() => {
    const d = document.querySelector('[data-live-chart="flow"] .chart')?.dataset;
    return d && Number(d.series) === 2 && Number(d.points) >= 3 && Number(d.max) > 0;
  }, null, { timeout: 30000 });
  const l = (await api('GET', '/api/live/queues/%2F/ticks')).body;
  assert.equal(l.interval_ms, 1000);
  assert.ok(l.samples.length >= 3 && l.samples.some((x) => x.inflow > 0) && l.samples.some((x) => x.outflow > 0), 'the API saw the traffic too');
  // events: 300 records, group billing 150 behind.
  await go('#/topics/events');
  await page.waitForFunction(() => {
    const d = document.querySelector('[data-live-chart="backlog"] .chart')?.dataset;
    return d && Number(d.points) >= 1 && Number(d.max) === 150;
  }, null, { timeout: 30000 });
});

await step('publish from the console, then get it back', async () => {
  await go('#/queues/%2F/inbox');
  await page.waitForSelector('textarea[name=payload]');
  await page.fill('textarea[name=payload]', '{"hello": "from the console"}');
  await page.click('button:text("Publish message")');
  await page.waitForSelector('.ok-box:text("routed")');
  await page.selectOption('select[name=ackmode]', 'ack_requeue_false');
  await page.click('button:text("Get messages")');
  await page.waitForSelector('[data-message="1"]');
  assert.equal(await page.locator('[data-message="1"] pre.payload').innerText(), '{"hello": "from the console"}');
  const q = (await api('GET', '/api/queues/%2F/inbox')).body;
  assert.equal(q.messages, 0, 'an acking get removed it');
});

await step('purge asks first; cancel keeps the messages, confirm empties the queue', async () => {
  await go('#/queues/%2F/orders');
  await page.waitForFunction(() => document.querySelector('.stats')?.dataset.ready === '5');
  await page.click('button:text("Purge")');
  await page.waitForSelector('dialog[open]');
  await shot('purge-confirm');
  await page.click('dialog button:text("Cancel")');
  await page.waitForSelector('dialog', { state: 'detached' });
  assert.equal((await api('GET', '/api/queues/%2F/orders')).body.messages_ready, 5, 'cancel purged nothing');
  await page.click('button:text("Purge")');
  await page.click('dialog button:text("Purge messages")');
  await page.waitForFunction(() => document.querySelector('.stats')?.dataset.ready === '0');
  assert.equal((await api('GET', '/api/queues/%2F/orders')).body.messages_ready, 0);
});

await step('delete needs the name typed; then the queue is gone', async () => {
  await go('#/queues/%2F/scratch');
  await page.click('button:text("Delete")');
  const ok = page.locator('dialog button:text("Delete queue")');
  assert.equal(await ok.isDisabled(), true, 'disabled until the name is typed');
  await page.fill('dialog input', 'scratch');
  assert.equal(await ok.isDisabled(), false);
  await ok.click();
  await page.waitForURL(/#\/queues$/);
  assert.equal((await api('GET', '/api/queues/%2F/scratch')).status, 404);
});

await step('exchanges list and an exchange with its bindings', async () => {
  await go('#/exchanges');
  await page.waitForFunction(() => Number(document.querySelector('[data-table=exchanges]')?.dataset.total) >= 7);
  await shot('exchanges');
  await page.click('a:text("orders.x")');
  // The exchange page draws its cards first and fills the bindings table when
  // its request answers: wait for the row itself (exact text, not the
  // substring that the list's own "orders.x" link would match).
  const bindings = page.locator('section.card:has(h2:text("Bindings from this exchange"))');
  await bindings.locator('td a:text-is("orders")').waitFor();
  assert.match(await bindings.innerText(), /order\.#/);
  await page.fill('input[name=routing_key]', 'order.eu');
  await page.fill('textarea[name=payload]', 'routed through orders.x');
  await page.click('button:text("Publish message")');
  await page.waitForSelector('.ok-box:text("routed")');
  assert.equal((await api('GET', '/api/queues/%2F/orders')).body.messages_ready, 1);
});

await step('bindings list', async () => {
  await go('#/bindings');
  await page.waitForFunction((n) => document.querySelector('[data-table=bindings]')?.dataset.total === String(n), BINDINGS);
  assert.match(await page.locator('[data-table=bindings] tbody').innerText(), /orders\.x[\s\S]*orders[\s\S]*order\.#/);
});

await step('connections list and a connection with its channels', async () => {
  await go('#/connections');
  await page.waitForFunction(() => Number(document.querySelector('[data-table=connections]')?.dataset.total) >= 1);
  await shot('connections');
  await page.locator('[data-table=connections] tbody a').first().click();
  await page.waitForSelector('section.card:has(h2:text("Channels")) table');
  assert.match(await page.locator('section.card:has(h2:text("Client properties"))').innerText(), /product/);
});

await step('topics list and a topic with partitions and offsets', async () => {
  await go('#/topics');
  await page.waitForFunction(() => Number(document.querySelector('[data-table=topics]')?.dataset.total) >= 2);
  await page.click('a:text("events")');
  await page.waitForSelector('[data-table=partitions] tbody tr');
  const rows = await page.locator('[data-table=partitions] tbody tr').all();
  assert.equal(rows.length, 3);
  for (const r of rows) {
    const c = await r.locator('td').allInnerTexts();
    assert.equal(num(c[2]), 100, 'end offset');
    assert.equal(num(c[3]), 100, 'records');
  }
  assert.equal(num(await statValue('Records')), 300);
  // Read by: the group billing, 150 behind on this topic.
  await page.waitForSelector('[data-sides=readers] tr[data-kind=consumer_group][data-name=billing]');
  assert.equal(await page.locator('[data-sides=readers] tr[data-name=billing]').getAttribute('data-lag'), '150');
  assert.match(await page.locator('[data-sides=writers]').innerText(), /no AMQP exchange/);
  await shot('topic');
});

await step('consumer groups list and a group with lag per partition and a lag chart', async () => {
  await go('#/groups');
  await page.waitForSelector('[data-table=groups] a:text("billing")');
  const row = page.locator('[data-table=groups] tbody tr:has(a:text("billing"))');
  const cells = await row.locator('td').allInnerTexts(); // Group, State, Assignor, Protocol, Members, Lag
  assert.match(cells[3], /classic/);
  assert.equal(num(cells[5]), 150);
  await shot('groups');
  await page.click('a:text("billing")');
  await page.waitForFunction(() => document.querySelector('.stats')?.dataset.lag === '150');
  const lags = await page.locator('[data-table=offsets] tbody tr').evaluateAll((rs) => rs.map((r) => [r.dataset.partition, r.dataset.lag]));
  assert.deepEqual(lags, [['0', '60'], ['1', '50'], ['2', '40']]);
  const g = (await api('GET', '/api/kafka/groups/billing')).body;
  assert.equal(g.lag, 150);
  assert.equal(g.members, 1);
  assert.match(await page.locator('section.card:has(h2:text("Members and assignments"))').innerText(), /billing-1[\s\S]*events/);
  await page.waitForFunction(() => Number(document.querySelector('.card.wide .chart')?.dataset.points) >= 3, null, { timeout: 30000 });
  assert.equal(Number(await page.locator('.card.wide .chart').getAttribute('data-max')), 150);
  await shot('group');
});

await step('policies: set one with the form, the queue shows it, delete it', async () => {
  await go('#/policies');
  await page.waitForSelector('h1:text("Policies")');
  await page.fill('input[name=name]', 'console-limit');
  await page.fill('input[name=pattern]', '^orders$');
  await page.selectOption('select[name=apply-to]', 'queues');
  await page.fill('input[name=priority]', '7');
  await page.fill('textarea[name=definition]', '{"max-length-bytes": 100000000}');
  await page.click('button:text("Set policy")');
  await page.waitForSelector('[data-policies=policies] tr[data-policy="console-limit"]');
  const p = (await api('GET', '/api/policies/%2F/console-limit')).body;
  assert.equal(p.priority, 7);
  assert.deepEqual(p.definition, { 'max-length-bytes': 100000000 });
  assert.equal((await api('GET', '/api/queues/%2F/orders')).body.policy, 'console-limit');
  await shot('policies');
  await page.click('[data-policies=policies] tr[data-policy="console-limit"] button:text("Delete")');
  await page.click('dialog.confirm button.danger');
  await page.waitForSelector('[data-policies=policies] tr[data-policy="console-limit"]', { state: 'detached' });
  assert.equal((await api('GET', '/api/policies/%2F/console-limit')).status, 404);
  assert.equal((await api('GET', '/api/queues/%2F/orders')).body.policy, null);
});

await step('dark theme', async () => {
  await go('#/');
  await page.click('#theme');
  assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'dark');
  await page.waitForFunction(() => Number(document.getElementById('chart-rates')?.dataset.points) >= 3);
  await page.waitForTimeout(500);
  await shot('overview-dark', true);
  await page.click('#theme');
});

await step('an unknown user is sent back to the login form', async () => {
  await page.evaluate(() => sessionStorage.setItem('sluice.console.auth', btoa('nobody:nothing')));
  await go('#/queues');
  await page.waitForSelector('.login-error:text("Session ended")');
});

await step('no script errors on any page', async () => {
  // 401s from the deliberate bad logins are the only errors expected.
  const unexpected = pageErrors.filter((e) => !/401/.test(e));
  assert.deepEqual(unexpected, []);
});

await browser.close();
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
