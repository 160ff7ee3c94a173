// The console's consumer groups page lists share groups (KIP-932) beside
// the consumer groups: the group, its state, members, records in flight
// and lag. Run by test/share_group_test.go (TestConsoleShowsShareGroups)
// against a server with share group "sg-console" of one member holding
// three records unacknowledged. Environment: SLUICE_URL (the console).
import { loggedIn } from './small.mjs';

const { page, step, finish } = await loggedIn('#/groups');
await step('the share group is listed with its member and records in flight', async () => {
  const row = page.locator('[data-table=share-groups] tbody tr:has(span:text("sg-console"))');
  await row.waitFor({ state: 'visible' });
  const cells = await row.locator('td').allInnerTexts();
  // Share group, State, Members, In flight, Lag.
  if (cells[1] !== 'Stable' || cells[2] !== '1' || cells[3] !== '3' || cells[4] !== '3') {
    throw new Error(`row says: ${cells.join(' | ')}`);
  }
});
await finish();
