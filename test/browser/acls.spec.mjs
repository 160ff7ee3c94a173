// The console's Kafka ACLs page lists the stored ACLs and adds one through
// its form. Run by test/kafka_acl_test.go (TestConsoleKafkaACLs) against a
// server holding one ACL, a DENY READ of User:mallory on topic secrets.
// Environment: SLUICE_URL (the console).
import { loggedIn } from './small.mjs';

const { page, step, finish } = await loggedIn('#/acls');
await step('the stored ACL is listed', async () => {
  const row = page.locator('[data-table=acls] tbody tr:has(td:text("User:mallory"))');
  await row.waitFor({ state: 'visible' });
  const cells = await row.locator('td').allInnerTexts();
  // Principal, Permission, Operation, Resource, Name, Pattern, Host.
  if (cells[1] !== 'DENY' || cells[2] !== 'READ' || cells[3] !== 'TOPIC' || cells[4] !== 'secrets') {
    throw new Error(`row says: ${cells.join(' | ')}`);
  }
});
await step('the form adds an ALLOW of WRITE on a prefix', async () => {
  await page.fill('input[name=principal]', 'User:alice');
  await page.selectOption('select[name=operation]', 'write');
  await page.fill('input[name=resource_name]', 'orders.');
  await page.selectOption('select[name=pattern_type]', 'prefixed');
  await page.click('button:text("Add ACL")');
  const row = page.locator('[data-table=acls] tbody tr:has(td:text("User:alice"))');
  await row.waitFor({ state: 'visible' });
  const cells = await row.locator('td').allInnerTexts();
  if (cells[1] !== 'ALLOW' || cells[2] !== 'WRITE' || cells[4] !== 'orders.' || cells[5] !== 'PREFIXED') {
    throw new Error(`row says: ${cells.join(' | ')}`);
  }
});
await finish();
