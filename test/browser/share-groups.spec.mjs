// The console's consumer groups page lists share groups (KIP-932) beside
// the consumer groups: the group, its state, members, records in flight
// and lag. Run by test/share_group_test.go (TestConsoleShowsShareGroups)
// against a server with share group "sg-console" of one member holding
// three records unacknowledged. Environment: SLUICE_URL (the console).
import { chromium } from 'playwright-core';

const URL = process.env.SLUICE_URL;
if (!URL) {
  console.error('set SLUICE_URL');
  process.exit(2);
}
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium', headless: true,
  args: ['--no-sandbox', '--disable-dev-shm-usage'],
});
const page = await browser.newPage();
page.setDefaultTimeout(30000);
let failed = 0;
async function step(name, f) {
  try {
    await f();
    console.log(`ok   ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e.stack || e}`);
  }
}
await page.goto(URL + '#/groups');
await page.fill('input[name=password]', 'guest');
await page.click('button[type=submit]');
await step('the share group is listed with its member and records in flight', async () => {
  const row = page.locator('[data-table=share-groups] tbody tr:has(span:text("sg-console"))');
  await row.waitFor({ state: 'visible' });
  const cells = await row.locator('td').allInnerTexts();
  // Share group, State, Members, In flight, Lag.
  if (cells[1] !== 'Stable' || cells[2] !== '1' || cells[3] !== '3' || cells[4] !== '3') {
    throw new Error(`row says: ${cells.join(' | ')}`);
  }
});
await browser.close();
console.log(`${failed} failed`);
process.exit(failed ? 1 : 0);
