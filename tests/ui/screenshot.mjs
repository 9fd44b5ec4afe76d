// Screenshot of /ui rendering tests/ui/comprehensive_layout.py (stock sidekick-py 0.0.7) through
// the real tether relay, saved as docs/ui.png.
//
//   TETHER_BIN=/root/.cache/tether-target/debug/tether node tests/ui/screenshot.mjs [out.png]
//
// Python from tests/ui/setup.sh (or $TETHER_UI_PYTHON); chromium at $CHROMIUM_PATH or
// /usr/bin/chromium; playwright-core from tests/browser/node_modules (npm ci --prefix tests/browser).
import { join } from 'node:path';
import { launchChromium } from '../browser/helpers.mjs';
import { REPO, runScript, startTether, uiPython } from './harness.mjs';

const out = process.argv[2] ?? join(REPO, 'docs/ui.png');
const python = uiPython();
const server = await startTether();
const browser = await launchChromium();
let script;
try {
  const context = await browser.newContext({ viewport: { width: 1180, height: 900 }, colorScheme: 'light', deviceScaleFactor: 1 });
  const page = await context.newPage();
  page.setDefaultTimeout(30_000);
  await page.goto(`${server.httpUrl}/ui`);
  await page.locator('#status[data-state="connected"]').waitFor();
  script = runScript(python, join(REPO, 'tests/ui/comprehensive_layout.py'), [server.relayUrl]);
  await page.locator('[data-sk-id="footer"]').waitFor();
  // a little interaction, so the picture shows events coming back
  await page.locator('[data-sk-id="button-2"]').click();
  await page.locator('[data-sk-id="grid"] .sk-cell[data-x="5"][data-y="1"]').click();
  await page.locator('[data-sk-id="canvas"]').click({ position: { x: 40, y: 165 } });
  await page.locator('[data-sk-id="textbox"]').fill('hello');
  await page.locator('[data-sk-id="textbox"]').press('Enter');
  await page.locator('[data-sk-id="console"] .sk-console-line', { hasText: 'textbox: hello' }).waitFor();
  await page.locator('[data-sk-id="textbox"]').blur();
  await page.waitForTimeout(1700); // let the viz change highlight fade
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: out, fullPage: true });
  console.log(`wrote ${out}`);
} finally {
  script?.kill();
  await browser.close();
  await server.stop();
}
