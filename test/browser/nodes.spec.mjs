// The console's Nodes page on a three-node cluster with one node killed:
// every node listed with its state and role, one controller, and the
// dead node's partitions listed as under-replicated (topic nodes-rf3) and
// offline (topic nodes-rf1); the quorum queue q-nodes with its leader and
// members, the killed node's offline. Run by test/cluster_console_test.go
// (TestConsoleNodesPage). Environment: SLUICE_URL (the console of a live
// node), SLUICE_DEAD (the killed node's id).
import { loggedIn, URL } from './small.mjs';

const dead = process.env.SLUICE_DEAD;
const { page, step, finish } = await loggedIn('#/nodes');
await step('three nodes, the killed one unreachable, one controller', async () => {
  await page.locator(`[data-table=nodes] tr[data-node="${dead}"] td:has-text("unreachable")`).waitFor({ state: 'visible' });
  const rows = page.locator('[data-table=nodes] tbody tr');
  if ((await rows.count()) !== 3) throw new Error(`${await rows.count()} nodes listed`);
  const controllers = await page.locator('[data-table=nodes] tbody .badge:text-is("controller")').count();
  if (controllers !== 1) throw new Error(`${controllers} controllers`);
  for (let i = 0; i < 3; i++) {
    // ID, Name, State, Role, Address, Rack, Leaders, Replicas (one of
    // each topic and of q-nodes' log on every node).
    const cells = await rows.nth(i).locator('td').allInnerTexts();
    if (!/^127\.0\.0\.1:\d+$/.test(cells[4]) || !/^\d+$/.test(cells[6]) || cells[7] !== '3') {
      throw new Error(`row says: ${cells.join(' | ')}`);
    }
  }
});
await step('the killed node\'s replicated partition is under-replicated', async () => {
  const row = page.locator('[data-table=under-replicated] tr[data-partition="nodes-rf3/0"]');
  await row.waitFor({ state: 'visible' });
  const cells = await row.locator('td').allInnerTexts();
  // Topic, Partition, Leader, Replicas, ISR, Offline replicas.
  if (cells[5] !== dead || cells[4].split(', ').length !== 2 || cells[4].includes(dead)) {
    throw new Error(`row says: ${cells.join(' | ')}`);
  }
});
await step('the killed node\'s single-replica partition is offline', async () => {
  const row = page.locator('[data-table=offline] tbody tr');
  await row.first().waitFor({ state: 'visible' });
  if ((await row.count()) !== 1) throw new Error(`${await row.count()} offline partitions`);
  const cells = await row.first().locator('td').allInnerTexts();
  if (cells[0] !== 'nodes-rf1' || cells[2] !== 'none' || cells[3] !== dead) {
    throw new Error(`row says: ${cells.join(' | ')}`);
  }
});
await step('the Nodes link is in the navigation and active', async () => {
  await page.locator('a[data-nav=nodes].active').waitFor({ state: 'visible' });
});
await step('a quorum queue shows its leader and its three members, the killed node offline', async () => {
  await page.goto(URL + '#/queues/%2F/q-nodes');
  await page.locator('.members:has-text("1 offline")').waitFor({ state: 'visible' });
  const members = await page.locator('.members .badge').count();
  const offline = await page.locator('.members .badge.bad').count();
  if (members !== 3 || offline !== 1) throw new Error(`${members} members shown, ${offline} offline`);
  const text = await page.locator('.members').innerText();
  if (!text.includes(`sluice-${dead}@`)) throw new Error(`members: ${text}`);
});
await step('the queue list shows the queue\'s node', async () => {
  await page.goto(URL + '#/queues');
  const row = page.locator('[data-table=queues] tbody tr:has-text("q-nodes")');
  await row.waitFor({ state: 'visible' });
  if (!(await row.innerText()).includes('sluice-')) throw new Error(`row: ${await row.innerText()}`);
});
await finish();
