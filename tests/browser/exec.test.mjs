// The /exec page (web/exec.html + web/exec.js) and the dashboard's process list (web/index.*)
// against the real tether binary, in Debian's chromium through playwright-core:
//   1. the stream splitter and frame reader of exec.js in node (raw chunks that split lines or
//      hold several, control frames, close codes);
//   2. the default config's `demo` entry: lines appear one by one while the process runs, its
//      tagged stderr is shown apart, status done with exit code 0;
//   3. validation errors from the server (`Invalid meta`, `Invalid text`) are shown, status
//      "request rejected", and no process was started;
//   4. `claude` pointed at tests/fixtures/exec/fake-claude: stream-json rendered as text blocks,
//      a collapsible tool-use block with its input, the tool result and the final result line;
//      a flood of 20,000 lines is counted whole while the DOM keeps the last 2,000 entries;
//   5. a non-zero exit (1011 `exit 3`) and a spawn failure are shown as failures;
//   6. stdin: lines typed in the page go to `cat`, EOF ends it;
//   7. Stop: a running process (a shell with a `sleep` grandchild) is listed by the dashboard and
//      `GET /exec/processes`; Stop closes the socket, both processes die and the lists empty;
//   8. an endpoint with `token_env`: the page shows a token field, filled from `/exec?token=`; a
//      wrong token is refused (nothing runs, the page says why), the right one runs.
//
//   TETHER_BIN=/path/to/tether node --test tests/browser/exec.test.mjs
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchChromium, openPage, startServer, waitUntil, WAIT_MS } from './helpers.mjs';
import { LineSplitter, classifyFrame, describeClose, endpointPath } from '../../web/exec.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const FAKE_CLAUDE = join(REPO, 'tests/fixtures/exec/fake-claude');

/** @type {import('playwright-core').Browser} */
let browser;
/** @type {import('./helpers.mjs').Server} default config: claude, echo, demo */
let plain;
/** @type {import('./helpers.mjs').Server} test config: fake claude, sleepy, fail, cat, missing */
let custom;
const tmp = mkdtempSync(join(tmpdir(), 'tether-exec-test-'));

const GUARD_TOKEN = 'page-token-0123456789';

/** A TOML string literal. @param {string} s */
const toml = (s) => JSON.stringify(s);

before(async () => {
  const config = join(tmp, 'exec.toml');
  writeFileSync(
    config,
    [
      '[[exec]]',
      'name = "claude"',
      'protocol = "claude"',
      `argv = [${toml(FAKE_CLAUDE)}, "-p", "--output-format", "stream-json", "--verbose", "--", "{prompt}"]`,
      '',
      '[[exec]]',
      'name = "sleepy"',
      // The shell reports its own pid and its grandchild's, then waits: Stop must end both.
      `argv = ["sh", "-c", ${toml('echo "pids $$ $(sleep 60 >/dev/null & echo $!)"; echo started; sleep 60; echo never')}]`,
      '',
      '[[exec]]',
      'name = "fail"',
      `argv = ["sh", "-c", ${toml('echo out; echo oops >&2; exit 3')}]`,
      '',
      '[[exec]]',
      'name = "cat"',
      'argv = ["cat"]',
      'stdin = true',
      '',
      '[[exec]]',
      'name = "guarded"',
      `argv = ["sh", "-c", ${toml(`echo guarded ran >> ${join(tmp, 'guarded-runs')}; echo guarded ran`)}]`,
      'token_env = "TETHER_TEST_EXEC_TOKEN"',
      '',
      '[[exec]]',
      'name = "missing"',
      'argv = ["/nonexistent/tether-test-program"]',
      '',
    ].join('\n'),
  );
  process.env.TETHER_TEST_EXEC_TOKEN = GUARD_TOKEN; // read by the server for `guarded`
  [plain, custom] = await Promise.all([startServer(), startServer(['--config', config])]);
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await plain?.stop('SIGKILL').catch(() => {});
  await custom?.stop('SIGKILL').catch(() => {});
  rmSync(tmp, { recursive: true, force: true });
});

/**
 * Open /exec?endpoint=NAME on `server`, wait for its form.
 * @param {import('./helpers.mjs').Server} server
 * @param {string} endpoint
 */
async function openExec(server, endpoint) {
  const opened = await openPage(browser, `${server.httpUrl}/exec?endpoint=${endpoint}`, `exec:${endpoint}`, WAIT_MS);
  await opened.page.waitForSelector('#run:not([disabled])');
  assert.equal(await opened.page.inputValue('#endpoint'), endpoint);
  return opened;
}

/** @param {{pageErrors: string[], consoleErrors: string[]}} o */
function assertNoPageErrors(o) {
  assert.deepEqual(o.pageErrors, [], 'no uncaught errors in the page');
  // chromium logs a console error for a WebSocket closed with a non-1000 code: only those pass
  const other = o.consoleErrors.filter((e) => !/WebSocket connection to .* failed/.test(e));
  assert.deepEqual(other, [], 'no console errors but WebSocket failures');
}

/** @param {import('playwright-core').Page} page */
const outputLines = (page) => page.$$eval('#output pre.line', (els) => els.map((e) => e.textContent));

/** @param {import('./helpers.mjs').Server} server */
async function processes(server) {
  const res = await fetch(`${server.httpUrl}/exec/processes`);
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.ok(Array.isArray(body?.processes), `GET /exec/processes has a processes list: ${JSON.stringify(body)}`);
  return /** @type {{id: unknown, endpoint: string, pid: number, started: number, bytes_out: number}[]} */ (body.processes);
}

/**
 * Whether `pid` still runs: a zombie waiting for its parent (an orphan waits for pid 1, which
 * may reap it late) has ended.
 * @param {number} pid
 */
function alive(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

describe('exec.js without a browser', () => {
  test('LineSplitter joins raw chunks into lines, whatever the chunking', () => {
    const text = '{"type":"system"}\nplain line\r\nüñí €\n\nlast';
    for (const size of [1, 2, 3, 7, text.length]) {
      /** @type {string[]} */
      const lines = [];
      const s = new LineSplitter((l) => lines.push(l));
      for (let i = 0; i < text.length; i += size) s.push(text.slice(i, i + size));
      s.flush();
      assert.deepEqual(lines, ['{"type":"system"}', 'plain line', 'üñí €', '', 'last'], `chunks of ${size}`);
    }
  });

  test('classifyFrame tells the server speaking from output', () => {
    assert.deepEqual(classifyFrame('{"info":"send {prompt,meta}"}'), { kind: 'info', text: 'send {prompt,meta}' });
    assert.deepEqual(classifyFrame('{"error":"Bad JSON"}'), { kind: 'error', text: 'Bad JSON' });
    assert.deepEqual(classifyFrame('{"stream":"stderr","data":"x\\n"}'), { kind: 'tagged', stream: 'stderr', data: 'x\n' });
    // output: ends with \n, or is not a control object, or is half a line
    assert.equal(classifyFrame('{"error":"x"}\n').kind, 'raw');
    assert.equal(classifyFrame('{"type":"result","result":"ok"}').kind, 'raw');
    assert.equal(classifyFrame('{"type":"assis').kind, 'raw');
    assert.equal(classifyFrame('hello').kind, 'raw');
  });

  test('describeClose reads the exit status from the close frame', () => {
    assert.deepEqual(describeClose(1000, '', false), { state: 'done', label: 'exit 0', exit: 0 });
    assert.deepEqual(describeClose(1011, 'exit 3', false), { state: 'failed', label: 'exit 3', exit: 3 });
    assert.equal(describeClose(1011, 'signal 9', false).label, 'killed by signal 9');
    assert.equal(describeClose(1011, 'Timeout', false).label, 'timed out');
    assert.equal(describeClose(1008, '', false).label, 'request rejected');
    assert.equal(describeClose(1013, '', false).state, 'error');
    assert.equal(describeClose(1000, '', true).state, 'stopped');
    assert.equal(endpointPath({ name: 'claude', protocol: 'claude' }), '/ws/claude');
    assert.equal(endpointPath({ name: 'a b', protocol: 'params' }), '/ws/exec/a%20b');
  });
});

describe('/exec in chromium', () => {
  test('GET /exec serves the page; /exec/endpoints lists the defaults', async () => {
    const res = await fetch(`${plain.httpUrl}/exec`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/html/);
    assert.match(await res.text(), /exec\.js/);
    const eps = (await (await fetch(`${plain.httpUrl}/exec/endpoints`)).json()).endpoints;
    const names = eps.map((/** @type {{name: string}} */ e) => e.name);
    for (const n of ['claude', 'echo', 'demo']) assert.ok(names.includes(n), `default endpoint ${n} in ${names}`);
  });

  test('demo: lines appear one by one, stderr apart, then done with exit 0', async () => {
    const o = await openExec(plain, 'demo');
    const { page } = o;
    await page.fill('#param-text', 'hello <b>world</b>');
    await page.click('#run');
    // The first line is shown while the process still runs (the demo prints 5 lines 0.3 s apart).
    await page.locator('#output pre.line', { hasText: '1: hello <b>world</b>' }).waitFor();
    const early = await outputLines(page);
    const state = await page.getAttribute('#status', 'data-state');
    assert.equal(state, 'running', `status while the first lines arrive (lines: ${early})`);
    assert.ok(early.length < 5, `not all lines at once: ${early}`);
    assert.equal(await page.isDisabled('#stop'), false, 'Stop is enabled while running');
    await page.waitForSelector('#status[data-state="done"]');
    assert.deepEqual(await outputLines(page), [1, 2, 3, 4, 5].map((i) => `${i}: hello <b>world</b>`));
    assert.equal(await page.textContent('#output .stderr'), 'demo done');
    assert.equal(await page.getAttribute('#exit', 'data-exit'), '0');
    assert.match((await page.textContent('#exit')) ?? '', /exit code 0/);
    assert.equal(await page.$$eval('#output b', (els) => els.length), 0, 'output is text, never HTML');
    assert.equal(await page.isDisabled('#stop'), true);
    // Run again on the same page: the output starts afresh.
    await page.fill('#param-text', 'again');
    await page.click('#run');
    await page.waitForSelector('#status[data-state="done"]');
    assert.deepEqual(await outputLines(page), [1, 2, 3, 4, 5].map((i) => `${i}: again`));
    assertNoPageErrors(o);
    await o.context.close();
  });

  test('validation errors from the server are shown and nothing runs', async () => {
    const o = await openExec(plain, 'claude');
    const { page } = o;
    await page.fill('#param-prompt', 'hello');
    await page.fill('#param-meta', 'not valid!');
    await page.click('#run');
    await page.waitForSelector('#status[data-state="error"]');
    assert.match((await page.textContent('#output .error')) ?? '', /^Invalid meta/);
    assert.equal(await page.textContent('#status'), 'request rejected');
    assert.equal(await page.getAttribute('#exit', 'data-exit'), null, 'no exit code: nothing ran');

    await page.fill('#param-meta', '');
    await page.fill('#param-prompt', '');
    await page.click('#run');
    await page.waitForSelector('#status[data-state="error"]');
    assert.match((await page.textContent('#output .error')) ?? '', /^Invalid prompt/);

    await page.selectOption('#endpoint', 'echo');
    await page.waitForSelector('#param-text');
    await page.click('#run');
    await page.waitForSelector('#status[data-state="error"]');
    assert.match((await page.textContent('#output .error')) ?? '', /^Invalid text/);
    assert.match(page.url(), /endpoint=echo/, 'the URL follows the chosen endpoint');
    assert.deepEqual(await processes(plain), []);
    assertNoPageErrors(o);
    await o.context.close();
  });

  test('claude (fake): text, tool use, tool result and the result line', async () => {
    assert.ok(existsSync(FAKE_CLAUDE), 'tests/fixtures/exec/fake-claude is missing');
    const o = await openExec(custom, 'claude');
    const { page } = o;
    await page.fill('#param-prompt', 'List the files, please tool lines=2');
    await page.fill('#param-meta', 'ABC-1');
    await page.click('#run');
    await page.waitForSelector('#status[data-state="done"]');
    assert.equal(await page.getAttribute('#exit', 'data-exit'), '0');
    const texts = await page.$$eval('#output .text-block', (els) => els.map((e) => e.textContent ?? ''));
    assert.ok(texts.length >= 1, 'at least one text block');
    const tools = page.locator('#output details.tool-use');
    assert.ok((await tools.count()) >= 1, 'at least one tool-use block');
    const tool = tools.first();
    assert.ok(((await tool.getAttribute('data-tool')) ?? '').length > 0, 'the tool has a name');
    assert.equal(await tool.evaluate((d) => /** @type {HTMLDetailsElement} */ (d).open), false, 'collapsed at first');
    assert.equal(await tool.locator('pre').isVisible(), false);
    await tool.locator('summary').click();
    assert.equal(await tool.locator('pre').isVisible(), true, 'the input shows when expanded');
    const input = (await tool.locator('pre').textContent()) ?? '';
    assert.doesNotThrow(() => JSON.parse(input), `tool input is pretty JSON: ${input}`);
    assert.ok((await page.locator('#output details.tool-result').count()) >= 1, 'a tool result block');
    const result = page.locator('#output .result');
    assert.equal(await result.count(), 1, 'one result line');
    assert.match((await result.locator('.result-meta').textContent()) ?? '', /^result: success · (\d+ ms|\d+\.\d s) · \d+ turns? · \$\d+\.\d{4}$/);
    // The prompt reached the command as one argv element, meta appended as the original did.
    const all = (await page.textContent('#output')) ?? '';
    assert.match(all, /List the files, please/);
    assertNoPageErrors(o);
    await o.context.close();
  });

  test('a flood of 20,000 lines: every line counted, the DOM stays bounded', async () => {
    assert.ok(existsSync(FAKE_CLAUDE), 'tests/fixtures/exec/fake-claude is missing');
    const o = await openExec(custom, 'claude');
    const { page } = o;
    await page.fill('#param-prompt', 'flood=20000');
    await page.click('#run');
    await page.waitForSelector('#status[data-state="done"]', { timeout: 60_000 });
    // system + one assistant line + 20,000 flood lines + result
    await page.waitForSelector('#counts[data-lines="20003"]');
    const nodes = await page.$$eval('#output > *', (els) => els.length);
    assert.ok(nodes <= 2001, `at most 2000 entries and the note in the DOM: ${nodes}`);
    assert.match((await page.textContent('#output .dropped')) ?? '', /earlier entries not shown/);
    assert.equal(await page.locator('#output > :last-child').getAttribute('class'), 'result', 'the newest entry is last');
    assert.equal(await page.textContent('#output pre.line >> nth=-1'), 'line 19999');
    assertNoPageErrors(o);
    await o.context.close();
  });

  test('non-zero exit and spawn failure are shown as failures', async () => {
    const o = await openExec(custom, 'fail');
    const { page } = o;
    await page.click('#run');
    await page.waitForSelector('#status[data-state="failed"]');
    assert.equal(await page.getAttribute('#exit', 'data-exit'), '3');
    assert.deepEqual(await outputLines(page), ['out']);
    assert.equal(await page.textContent('#output .error'), 'oops');

    await page.selectOption('#endpoint', 'missing');
    await page.click('#run');
    await page.waitForSelector('#status[data-state="failed"]');
    assert.match((await page.textContent('#output .error')) ?? '', /^Failed to spawn/);
    assertNoPageErrors(o);
    await o.context.close();
  });

  test('stdin: lines typed in the page reach the process, EOF ends it', async () => {
    const o = await openExec(custom, 'cat');
    const { page } = o;
    assert.equal(await page.isVisible('#stdin-form'), true, 'the stdin form shows for stdin endpoints');
    await page.click('#run');
    await page.waitForSelector('#stdin-send:not([disabled])');
    for (const line of ['first line', '{"json": "as text"}']) {
      await page.fill('#stdin', line);
      await page.press('#stdin', 'Enter');
      await page.locator('#output pre.line', { hasText: line }).waitFor();
    }
    await page.click('#stdin-eof');
    await page.waitForSelector('#status[data-state="done"]');
    assert.deepEqual(await outputLines(page), ['first line', '{"json": "as text"}']);
    assertNoPageErrors(o);
    await o.context.close();
  });

  test('a token endpoint: the field comes from ?token=, a wrong token runs nothing, the right one runs', async () => {
    const runs = join(tmp, 'guarded-runs');
    const wrong = await openPage(browser, `${custom.httpUrl}/exec?endpoint=guarded&token=nope`, 'exec:guarded', WAIT_MS);
    await wrong.page.waitForSelector('#run:not([disabled])');
    assert.equal(await wrong.page.isVisible('#token'), true, 'the token field shows for token endpoints');
    assert.equal(await wrong.page.inputValue('#token'), 'nope', 'filled in from ?token=');
    await wrong.page.click('#run');
    await wrong.page.waitForSelector('#status[data-state="error"]');
    assert.equal(await wrong.page.textContent('#status'), 'refused: missing or wrong token');
    assert.equal(existsSync(runs), false, 'nothing ran with a wrong token');
    await wrong.context.close();

    const right = await openExec(custom, 'guarded');
    assert.equal(await right.page.inputValue('#token'), '', 'no token in the URL: the field is empty');
    await right.page.fill('#token', GUARD_TOKEN);
    await right.page.click('#run');
    await right.page.waitForSelector('#status[data-state="done"]');
    assert.deepEqual(await outputLines(right.page), ['guarded ran']);
    assert.equal(readFileSync(runs, 'utf8'), 'guarded ran\n');
    assertNoPageErrors(right);
    await right.context.close();

    const other = await openExec(custom, 'cat');
    assert.equal(await other.page.isVisible('#token'), false, 'no token field for endpoints without one');
    await other.context.close();
  });

  test('Stop kills the process and its child; the dashboard lists it, then not', async () => {
    const dash = await openPage(browser, `${custom.httpUrl}/`, 'dashboard', WAIT_MS);
    await dash.page.waitForSelector('#process-empty:not([hidden])');
    assert.equal(await dash.page.textContent('#process-empty'), 'no process running');

    const o = await openExec(custom, 'sleepy');
    const { page } = o;
    await page.click('#run');
    await page.locator('#output pre.line', { hasText: 'started' }).waitFor();
    const pidsLine = (await outputLines(page)).find((l) => l?.startsWith('pids ')) ?? '';
    const [shPid, sleepPid] = pidsLine.split(' ').slice(1).map(Number);
    assert.ok(shPid > 0 && sleepPid > 0, `pids line: ${pidsLine}`);
    assert.ok(alive(shPid) && alive(sleepPid));

    const list = await processes(custom);
    assert.equal(list.length, 1, JSON.stringify(list));
    assert.equal(list[0].endpoint, 'sleepy');
    assert.equal(list[0].pid, shPid, 'the listed pid is the command');
    assert.ok(list[0].bytes_out > 0, 'bytes out counted');
    const row = dash.page.locator(`#process-rows tr[data-pid="${shPid}"]`);
    await row.waitFor();
    assert.equal(await row.locator('a').textContent(), 'sleepy');
    assert.equal(await row.locator('a').getAttribute('href'), '/exec?endpoint=sleepy');

    await page.click('#stop');
    await page.waitForSelector('#status[data-state="stopped"]');
    await waitUntil(async () => (await processes(custom)).length === 0, 'GET /exec/processes to be empty');
    await waitUntil(() => !alive(shPid) && !alive(sleepPid), `pids ${shPid} and ${sleepPid} to die`);
    await dash.page.waitForSelector('#process-empty:not([hidden])');
    assert.equal(await dash.page.locator('#process-rows tr').count(), 0);
    assert.ok(!(await outputLines(page)).includes('never'));
    assertNoPageErrors(o);
    assertNoPageErrors(dash);
    await o.context.close();
    await dash.context.close();
  });
});
