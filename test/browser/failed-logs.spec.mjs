// The console's overview shows logs refusing writes after a storage
// failure, and stops showing them once the broker has reopened them. Run
// by test/console_test.go (TestConsoleShowsFailedLogs) against a server
// built with -tags faultinject whose partition log "broken-0" failed an
// fsync that is still failing. Environment: SLUICE_URL (the console).
import { URL, loggedIn } from './small.mjs';

const { page, step, finish } = await loggedIn('#/');
const box = page.locator('[data-failed-logs]');
await step('overview shows the failed partition log', async () => {
  await box.waitFor({ state: 'visible' });
  const text = await box.innerText();
  if (!/Storage failure: 1 partition log refusing writes/.test(text)) throw new Error(`box says: ${text}`);
});
await step('the box goes once the broker reopens the log', async () => {
  const r = await fetch(new globalThis.URL('/debug/faults?op=clear', URL), { method: 'POST' });
  if (!r.ok) throw new Error(`clearing the fault: ${r.status}`);
  await box.waitFor({ state: 'detached', timeout: 60000 });
});
await finish();
