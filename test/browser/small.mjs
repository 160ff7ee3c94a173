// The frame of the small browser checks (failed-logs, share-groups): a
// headless Chromium logged in to the console at SLUICE_URL as guest on a
// route, a step runner that reports "ok" or "FAIL" per step, and finish,
// which prints "N failed" and exits with the result.
import { chromium } from 'playwright-core';

export const URL = process.env.SLUICE_URL;

export async function loggedIn(route) {
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
  async function finish() {
    await browser.close();
    console.log(`${failed} failed`);
    process.exit(failed ? 1 : 0);
  }
  await page.goto(URL + route);
  await page.fill('input[name=password]', 'guest');
  await page.click('button[type=submit]');
  return { page, step, finish };
}
