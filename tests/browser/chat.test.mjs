// Browser test of the chat page (web/chat.html) against the real server binary.
//
//   TETHER_BIN=/path/to/tether node --test tests/browser/chat.test.mjs
//
// Uses Debian's chromium (/usr/bin/chromium, or $CHROMIUM_PATH) through playwright-core; it never
// downloads a browser.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { LineClient, launchChromium, openPage, startServer, WAIT_MS } from './helpers.mjs';

/** @type {import('./helpers.mjs').Server | undefined} */
let server;
/** @type {import('playwright-core').Browser | undefined} */
let browser;

before(async () => {
  server = await startServer();
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await server?.stop('SIGKILL').catch(() => {});
});

/**
 * Open the chat page in a fresh context and log in as `name` in room `main`.
 * @param {string} name
 */
async function openChat(name) {
  assert.ok(browser && server);
  const { page, context, pageErrors, consoleErrors } = await openPage(browser, `${server.httpUrl}/chat`, name, WAIT_MS);
  await page.fill('#name', name);
  await page.fill('#room', 'main');
  await page.click('#connect');
  await page.waitForSelector('#status[data-state="connected"]');
  await page.waitForSelector(`#members li[data-client="${name}"]`);
  assert.equal(await page.isVisible('#error'), false, `${name}: no error shown after connecting`);
  return { page, context, pageErrors, consoleErrors };
}

/**
 * Wait until the page's message log has an entry from `from` whose text is `text`.
 * @param {import('playwright-core').Page} page
 * @param {string} from
 * @param {string} text
 */
async function waitForMessage(page, from, text) {
  await page
    .locator(`#messages li[data-from="${from}"] .text`)
    .filter({ hasText: text })
    .first()
    .waitFor({ state: 'visible' });
}

/**
 * The member list of the shown room, as "name:STATUS" strings.
 * @param {import('playwright-core').Page} page
 */
function members(page) {
  return page.$$eval('#members li', (els) =>
    els.map((e) => `${/** @type {HTMLElement} */ (e).dataset.client}:${/** @type {HTMLElement} */ (e).dataset.status}`),
  );
}

test('chat page: two browsers and a TCP client share room main', { timeout: 180_000 }, async () => {
  assert.ok(server);
  const alice = await openChat('alice');
  const bob = await openChat('bob');

  // A raw TCP line client joins the same room.
  const carol = await LineClient.connect(server.tcpPort);
  carol.send('HELLO main:carol');
  await carol.waitForLine('OK HELLO main:carol');

  // Everyone sees all three members, live (carol arrives by a `join` push).
  for (const { page } of [alice, bob]) {
    await page.waitForSelector('#members li[data-client="carol"]');
    assert.deepEqual(
      (await members(page)).map((m) => m.split(':')[0]),
      ['alice', 'bob', 'carol'],
      'member list',
    );
  }

  // alice writes in the page: bob's page and carol's socket get it, with the sender.
  const fromAlice = `hello from alice ✓ ${Date.now()}`;
  await alice.page.fill('#text', fromAlice);
  await alice.page.click('#send');
  await waitForMessage(bob.page, 'alice', fromAlice);
  await carol.waitForLine(`MSG main:alice ${fromAlice}`);
  // alice's own copy is shown and confirmed by the server.
  await alice.page.waitForSelector(`#messages li[data-kind="self"][data-state="sent"]`);
  assert.equal(await alice.page.inputValue('#text'), '', 'composer cleared after sending');

  // carol writes over TCP: both pages get it.
  const fromCarol = `hi from tcp  with  spaces ${Date.now()}`;
  carol.send(`SEND main:carol ${fromCarol}`);
  await carol.waitForLine('OK SEND main 2');
  await waitForMessage(alice.page, 'carol', fromCarol);
  await waitForMessage(bob.page, 'carol', fromCarol);

  // Statuses: senders are ACTIVE, bob (who never sent) is CONNECTED.
  for (const { page } of [alice, bob]) {
    await page.waitForSelector('#members li[data-client="alice"][data-status="ACTIVE"]');
    await page.waitForSelector('#members li[data-client="carol"][data-status="ACTIVE"]');
    await page.waitForSelector('#members li[data-client="bob"][data-status="CONNECTED"]');
  }

  const errorsBeforeShutdown = [...alice.pageErrors, ...bob.pageErrors, ...alice.consoleErrors, ...bob.consoleErrors];
  assert.deepEqual(errorsBeforeShutdown, [], 'no JavaScript or console errors in the pages');
  assert.equal(await alice.page.isVisible('#error'), false, 'alice: no error shown');
  assert.equal(await bob.page.isVisible('#error'), false, 'bob: no error shown');

  // Shutdown: SIGTERM, clean exit, every door is told.
  const { code, signal } = await server.stop('SIGTERM');
  assert.equal(signal, null, `server killed by ${signal}\n${server.output()}`);
  assert.equal(code, 0, `server exit code\n${server.output()}`);
  await carol.waitForLine('BYE server shutting down');
  for (const { page } of [alice, bob]) {
    await page.waitForSelector('#status[data-state="reconnecting"]');
  }
  assert.deepEqual([...alice.pageErrors, ...bob.pageErrors], [], 'no uncaught exceptions in the pages');
  carol.close();
  await alice.context.close();
  await bob.context.close();
});
