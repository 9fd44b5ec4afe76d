// @ts-check
/**
 * exec.js: the `/exec` page. Lists the server's exec endpoints (`GET /exec/endpoints`), builds a
 * form from the chosen endpoint's parameters, sends one request over its WebSocket
 * (`/ws/claude` or `/ws/exec/<name>`) and renders what comes back as it streams:
 * Claude's stream-json messages (text, tool use, tool results, the final result), plain lines,
 * stderr and errors, and the exit status read from the close frame (docs/protocol/exec.md).
 *
 * The stream is split on `\n` here, not trusted to be one line per frame, so the page also reads
 * servers that send raw chunks (a frame holding half a line, or several).
 */

import { resolveWsUrl } from './tether-client.js';

// ---------------------------------------------------------------------------------------------
// Wire shapes
// ---------------------------------------------------------------------------------------------

/**
 * One parameter of an endpoint, as `GET /exec/endpoints` describes it.
 * @typedef {object} ParamSpec
 * @property {string} [type]       `string` (default), `integer`, `number` or `boolean`
 * @property {boolean} [required]
 * @property {number} [min_bytes]
 * @property {number} [max_bytes]
 * @property {string} [pattern]
 * @property {string[]} [enum]
 * @property {number} [min]        integers: smallest value
 * @property {number} [max]        integers: largest value
 */

/**
 * One endpoint of `GET /exec/endpoints`.
 * @typedef {object} Endpoint
 * @property {string} name
 * @property {string} [protocol]     `claude` for the `/ws/claude` contract
 * @property {string} [path]         its WebSocket path, when the server says
 * @property {Record<string, ParamSpec>} [params]
 * @property {boolean} [stdin]   whether text frames after the request feed the process's stdin
 * @property {number} [timeout_s]
 * @property {number} [timeout_secs]
 * @property {string} [stderr]
 * @property {boolean} [token]   whether the upgrade needs a token (`token_env` in its table)
 */

/**
 * A frame the server sends on its own account (not process output), or a chunk of output.
 * @typedef {{kind: 'info', text: string}
 *   | {kind: 'error', text: string}
 *   | {kind: 'tagged', stream: string, data: string}
 *   | {kind: 'raw', text: string}} Frame
 */

/**
 * Classify one text frame. A frame that ends with `\n` is output. One that does not and is a JSON
 * object with an `info`, `error` or `stream`+`data` key is the server speaking; anything else is a
 * chunk of output (possibly part of a line).
 * @param {string} data
 * @returns {Frame}
 */
export function classifyFrame(data) {
  if (data.endsWith('\n') || !data.startsWith('{')) return { kind: 'raw', text: data };
  /** @type {unknown} */
  let v;
  try {
    v = JSON.parse(data);
  } catch {
    return { kind: 'raw', text: data };
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) return { kind: 'raw', text: data };
  const o = /** @type {Record<string, unknown>} */ (v);
  if (typeof o.stream === 'string' && 'data' in o) {
    return { kind: 'tagged', stream: o.stream, data: typeof o.data === 'string' ? o.data : JSON.stringify(o.data) };
  }
  if ('error' in o && Object.keys(o).length === 1) {
    return { kind: 'error', text: typeof o.error === 'string' ? o.error : JSON.stringify(o.error) };
  }
  if (typeof o.info === 'string' && Object.keys(o).length === 1) return { kind: 'info', text: o.info };
  return { kind: 'raw', text: data };
}

/** Splits a stream of text chunks into lines (without `\n`, a trailing `\r` dropped). */
export class LineSplitter {
  /** @param {(line: string) => void} onLine */
  constructor(onLine) {
    this.onLine = onLine;
    this.buf = '';
  }

  /** @param {string} chunk */
  push(chunk) {
    const s = this.buf + chunk;
    let start = 0;
    for (let nl = s.indexOf('\n'); nl >= 0; nl = s.indexOf('\n', start)) {
      const end = nl > start && s.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
      this.onLine(s.slice(start, end));
      start = nl + 1;
    }
    this.buf = start === 0 ? s : s.slice(start);
  }

  /** Hand over a last line that had no `\n`. */
  flush() {
    if (this.buf) {
      const last = this.buf;
      this.buf = '';
      this.onLine(last);
    }
  }
}

/**
 * What a close frame means for the run.
 * @typedef {object} Outcome
 * @property {'done' | 'failed' | 'stopped' | 'error'} state
 * @property {string} label       shown next to the status
 * @property {number | null} exit the process's exit code when the close frame says it
 */

/**
 * Read the close frame (docs/protocol/exec.md): 1000 = exit 0; 1011 with reason `exit N`,
 * `signal N` or `Timeout`; 1008 = request rejected; 1013 = busy; 1001 = server shutting down.
 * @param {number} code
 * @param {string} reason
 * @param {boolean} stoppedByUser the page closed the socket (Stop)
 * @returns {Outcome}
 */
export function describeClose(code, reason, stoppedByUser) {
  if (stoppedByUser) return { state: 'stopped', label: 'stopped', exit: null };
  if (code === 1000) return { state: 'done', label: 'exit 0', exit: 0 };
  if (code === 1011) {
    const m = /^exit (-?\d+)$/.exec(reason);
    if (m) return { state: 'failed', label: `exit ${m[1]}`, exit: Number(m[1]) };
    const s = /^signal (\d+)$/.exec(reason);
    if (s) return { state: 'failed', label: `killed by signal ${s[1]}`, exit: null };
    if (reason === 'Timeout') return { state: 'failed', label: 'timed out', exit: null };
    return { state: 'failed', label: reason ? `failed: ${reason}` : 'failed (1011)', exit: null };
  }
  if (code === 1008) return { state: 'error', label: 'request rejected', exit: null };
  if (code === 1013) return { state: 'error', label: 'busy, try again later', exit: null };
  if (code === 1001) return { state: 'error', label: 'server shutting down', exit: null };
  if (code === 1006) return { state: 'error', label: 'connection lost', exit: null };
  return { state: 'error', label: `closed (${code}${reason ? ` ${reason}` : ''})`, exit: null };
}

/**
 * The WebSocket path of an endpoint.
 * @param {Endpoint} ep
 */
export function endpointPath(ep) {
  if (ep.path) return ep.path;
  if (ep.protocol === 'claude' || (ep.name === 'claude' && !ep.protocol)) return '/ws/claude';
  return `/ws/exec/${encodeURIComponent(ep.name)}`;
}

// ---------------------------------------------------------------------------------------------
// Rendering of output lines
// ---------------------------------------------------------------------------------------------

/**
 * One thing to show, made into a DOM node only if it is still among the last shown.
 * @typedef {{kind: 'line' | 'stderr' | 'error' | 'info' | 'stdin', text: string}
 *   | {kind: 'json', value: Record<string, any>, text: string}} Item
 */

/** Output is added to the page at most this often (ms): each addition costs a layout. */
const FLUSH_MS = 50;

/** At most this many nodes stay in the output; older ones are dropped (and counted). */
const MAX_NODES = 2000;

/**
 * @param {string} tag
 * @param {string} className
 * @param {string} [text]
 */
function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/**
 * A collapsible block: summary line, then a <pre> body.
 * @param {string} className
 * @param {(summary: HTMLElement) => void} fillSummary
 * @param {string} body
 * @param {boolean} open
 */
function detailsBlock(className, fillSummary, body, open) {
  const d = /** @type {HTMLDetailsElement} */ (el('details', className));
  const s = el('summary', '');
  fillSummary(s);
  d.append(s, el('pre', '', body));
  d.open = open;
  return d;
}

/** @param {unknown} v */
function pretty(v) {
  if (typeof v === 'string') return v;
  try {
    return JSON.stringify(v, null, 2);
  } catch {
    return String(v);
  }
}

/**
 * The text of a tool result's `content` (a string, or an array of `{type: "text", text}` parts).
 * @param {unknown} content
 */
function toolResultText(content) {
  if (Array.isArray(content)) {
    return content.map((p) => (p && typeof p === 'object' && typeof p.text === 'string' ? p.text : pretty(p))).join('\n');
  }
  return pretty(content);
}

/**
 * Nodes for the content parts of an assistant or user message.
 * @param {unknown} content
 * @returns {HTMLElement[]}
 */
function contentNodes(content) {
  if (typeof content === 'string') return [el('div', 'text-block', content)];
  if (!Array.isArray(content)) return [];
  /** @type {HTMLElement[]} */
  const out = [];
  for (const part of content) {
    if (!part || typeof part !== 'object') continue;
    switch (part.type) {
      case 'text':
        out.push(el('div', 'text-block', String(part.text ?? '')));
        break;
      case 'thinking':
        out.push(detailsBlock('thinking', (s) => s.append('thinking'), String(part.thinking ?? ''), false));
        break;
      case 'tool_use': {
        const block = detailsBlock(
          'tool-use',
          (s) => {
            s.append('tool use ', el('span', 'tool-name', String(part.name ?? '?')));
            if (part.id) s.append(el('span', 'system', ` ${part.id}`));
          },
          pretty(part.input ?? {}),
          false,
        );
        block.dataset.tool = String(part.name ?? '');
        out.push(block);
        break;
      }
      case 'tool_result': {
        const block = detailsBlock(
          'tool-result',
          (s) => {
            s.append(part.is_error ? 'tool error' : 'tool result');
            if (part.tool_use_id) s.append(el('span', 'system', ` ${part.tool_use_id}`));
          },
          toolResultText(part.content),
          false,
        );
        block.dataset.error = String(Boolean(part.is_error));
        out.push(block);
        break;
      }
      default:
        out.push(el('pre', 'line', pretty(part)));
    }
  }
  return out;
}

/**
 * Nodes for one stdout line that parsed as a JSON object: Claude stream-json messages get their
 * own blocks; other objects are shown as the line they came in.
 * @param {Record<string, any>} v
 * @param {string} text the line as received
 * @returns {HTMLElement[]}
 */
function jsonNodes(v, text) {
  switch (v.type) {
    case 'system': {
      const bits = [`system${v.subtype ? `: ${v.subtype}` : ''}`];
      if (v.model) bits.push(`model ${v.model}`);
      if (Array.isArray(v.tools)) bits.push(`${v.tools.length} tools`);
      if (v.session_id) bits.push(`session ${v.session_id}`);
      return [el('div', 'system', bits.join(' · '))];
    }
    case 'assistant':
    case 'user':
      return contentNodes(v.message?.content);
    case 'message': // the API message shape some CLI versions print
      return contentNodes(v.content);
    case 'result': {
      const box = el('div', 'result');
      box.dataset.error = String(Boolean(v.is_error) || (v.subtype !== undefined && v.subtype !== 'success'));
      box.append(el('div', 'result-text', typeof v.result === 'string' ? v.result : pretty(v.result ?? v.subtype ?? '')));
      const meta = [`result: ${v.subtype ?? '?'}`];
      if (typeof v.duration_ms === 'number') {
        meta.push(v.duration_ms < 1000 ? `${Math.round(v.duration_ms)} ms` : `${(v.duration_ms / 1000).toFixed(1)} s`);
      }
      if (typeof v.num_turns === 'number') meta.push(`${v.num_turns} turn${v.num_turns === 1 ? '' : 's'}`);
      const cost = v.total_cost_usd ?? v.cost_usd;
      if (typeof cost === 'number') meta.push(`$${cost.toFixed(4)}`);
      box.append(el('div', 'result-meta', meta.join(' · ')));
      return [box];
    }
    default:
      return [el('pre', 'line', text)];
  }
}

/**
 * @param {Item} item
 * @returns {HTMLElement[]}
 */
function itemNodes(item) {
  switch (item.kind) {
    case 'json':
      return jsonNodes(item.value, item.text);
    case 'line':
      return [el('pre', 'line', item.text)];
    default:
      return [el('pre', item.kind, item.text)];
  }
}

/**
 * An stdout line as an item: JSON objects with a `type` are stream-json messages.
 * @param {string} line
 * @returns {Item}
 */
function stdoutItem(line) {
  if (line.startsWith('{') && line.includes('"type"')) {
    try {
      const v = JSON.parse(line);
      if (v && typeof v === 'object' && !Array.isArray(v) && typeof v.type === 'string') {
        return { kind: 'json', value: v, text: line };
      }
    } catch {
      // not JSON: a plain line
    }
  }
  return { kind: 'line', text: line };
}

/** The output pane: items are queued and turned into nodes every {@link FLUSH_MS} ms. */
class Output {
  /** @param {HTMLElement} root */
  constructor(root) {
    this.root = root;
    /** @type {Item[]} */
    this.pending = [];
    this.scheduled = false;
    /** items never shown because newer ones pushed them out */
    this.dropped = 0;
    /** @type {HTMLElement | null} */
    this.droppedNote = null;
    this.onFlush = () => {};
    /** follow the newest output; false once the reader scrolls up (reading layout only on scroll) */
    this.stick = true;
    root.addEventListener('scroll', () => {
      this.stick = root.scrollHeight - root.scrollTop - root.clientHeight < 40;
    });
  }

  clear() {
    this.root.replaceChildren();
    this.stick = true;
    this.pending = [];
    this.dropped = 0;
    this.droppedNote = null;
  }

  /** @param {Item} item */
  add(item) {
    this.pending.push(item);
    if (this.pending.length > 2 * MAX_NODES) {
      const cut = this.pending.length - MAX_NODES;
      this.pending.splice(0, cut);
      this.dropped += cut;
    }
    if (!this.scheduled) {
      this.scheduled = true;
      setTimeout(() => this.flush(), FLUSH_MS);
    }
  }

  flush() {
    this.scheduled = false;
    if (this.pending.length === 0) return;
    const atBottom = this.stick;
    const frag = document.createDocumentFragment();
    for (const item of this.pending) frag.append(...itemNodes(item));
    this.pending = [];
    this.root.append(frag);
    const extra = this.root.childElementCount - MAX_NODES - (this.droppedNote ? 1 : 0);
    for (let i = 0; i < extra; i++) {
      const first = this.droppedNote ? this.droppedNote.nextElementSibling : this.root.firstElementChild;
      first?.remove();
      this.dropped++;
    }
    if (this.dropped > 0) {
      if (!this.droppedNote) {
        this.droppedNote = el('div', 'dropped');
        this.root.prepend(this.droppedNote);
      }
      this.droppedNote.textContent = `… ${this.dropped.toLocaleString()} earlier entries not shown`;
    }
    if (atBottom) this.root.scrollTop = this.root.scrollHeight;
    this.onFlush();
  }
}

// ---------------------------------------------------------------------------------------------
// The page
// ---------------------------------------------------------------------------------------------

/** @param {string} id */
function byId(id) {
  const node = document.getElementById(id);
  if (!node) throw new Error(`exec.html: #${id} is missing`);
  return node;
}

/** One run: a WebSocket, its line splitters and its counters. */
class Run {
  /**
   * @param {Endpoint} ep
   * @param {Record<string, unknown>} request
   * @param {Output} output
   * @param {(state: string, label: string, outcome?: Outcome) => void} onState
   * @param {() => void} onCount
   * @param {string} [token]  sent as `?token=` (browsers cannot set `Authorization` on a WebSocket)
   */
  constructor(ep, request, output, onState, onCount, token) {
    this.output = output;
    this.onState = onState;
    this.onCount = onCount;
    this.lines = 0;
    this.stderrLines = 0;
    this.stoppedByUser = false;
    this.finished = false;
    this.stdout = new LineSplitter((line) => {
      this.lines++;
      output.add(stdoutItem(line));
    });
    this.stderr = new LineSplitter((line) => {
      this.stderrLines++;
      output.add({ kind: 'stderr', text: line });
    });
    const url = new URL(resolveWsUrl(endpointPath(ep), '/ws/exec'));
    if (token) url.searchParams.set('token', token);
    this.needsToken = Boolean(ep.token);
    this.opened = false;
    onState('connecting', 'connecting…');
    this.ws = new WebSocket(url);
    this.ws.addEventListener('open', () => {
      this.opened = true;
      this.ws.send(JSON.stringify(request));
      onState('running', 'running…');
    });
    this.ws.addEventListener('message', (ev) => {
      if (typeof ev.data === 'string') this.frame(ev.data);
    });
    this.ws.addEventListener('close', (ev) => this.closed(ev.code, ev.reason));
  }

  /** @param {string} data */
  frame(data) {
    const f = classifyFrame(data);
    switch (f.kind) {
      case 'info':
        this.output.add({ kind: 'info', text: f.text });
        break;
      case 'error':
        this.output.add({ kind: 'error', text: f.text.replace(/\n$/, '') });
        this.stderrLines++;
        break;
      case 'tagged':
        if (f.stream === 'stderr') this.stderr.push(f.data.endsWith('\n') ? f.data : `${f.data}\n`);
        else this.stdout.push(f.data.endsWith('\n') ? f.data : `${f.data}\n`);
        break;
      default:
        this.stdout.push(f.text);
    }
  }

  /**
   * @param {number} code
   * @param {string} reason
   */
  closed(code, reason) {
    if (this.finished) return;
    this.finished = true;
    this.stdout.flush();
    this.stderr.flush();
    // Everything received is on the page before the final status shows.
    this.output.flush();
    const outcome = describeClose(code, reason, this.stoppedByUser);
    if (!this.opened && this.needsToken && !this.stoppedByUser) {
      // The server answered the upgrade with 401; a browser only reports 1006.
      outcome.label = 'refused: missing or wrong token';
    }
    this.onCount();
    this.onState(outcome.state, outcome.label, outcome);
  }

  /**
   * Send a line to the process's stdin (endpoints with `stdin = true`; the server adds the `\n`).
   * @param {string} line
   */
  sendStdin(line) {
    if (this.finished || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(line);
    this.output.add({ kind: 'stdin', text: line });
    return true;
  }

  /** Close the process's stdin (`{"eof": true}`). */
  closeStdin() {
    if (this.finished || this.ws.readyState !== WebSocket.OPEN) return;
    this.ws.send('{"eof":true}');
    this.output.add({ kind: 'info', text: 'stdin closed' });
  }

  stop() {
    if (this.finished) return;
    this.stoppedByUser = true;
    this.onState('stopping', 'stopping…');
    this.ws.close(1000, 'stop');
  }
}

/**
 * One form control for a parameter.
 * @param {string} name
 * @param {ParamSpec} spec
 * @returns {HTMLElement}
 */
function paramControl(name, spec) {
  const id = `param-${name}`;
  const type = spec.type ?? 'string';
  /** @type {HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement} */
  let control;
  if (Array.isArray(spec.enum)) {
    const select = document.createElement('select');
    if (!spec.required) select.append(new Option('', ''));
    for (const v of spec.enum) select.append(new Option(String(v), String(v)));
    control = select;
  } else if (type === 'integer' || type === 'number') {
    const input = document.createElement('input');
    input.type = 'number';
    if (type === 'integer') input.step = '1';
    if (typeof spec.min === 'number') input.min = String(spec.min);
    if (typeof spec.max === 'number') input.max = String(spec.max);
    control = input;
  } else if (type === 'boolean') {
    const input = document.createElement('input');
    input.type = 'checkbox';
    control = input;
  } else if (name === 'prompt' || (spec.max_bytes ?? 0) > 256) {
    const area = document.createElement('textarea');
    area.rows = name === 'prompt' ? 5 : 3;
    control = area;
  } else {
    const input = document.createElement('input');
    input.type = 'text';
    control = input;
  }
  control.id = id;
  control.name = name;
  control.dataset.param = name;
  control.dataset.type = type;
  const label = el('label', '');
  label.setAttribute('for', id);
  label.append(name);
  if (spec.required) label.append(el('span', 'req', ' *'));
  const hints = [type];
  if (spec.min_bytes) hints.push(`≥ ${spec.min_bytes} bytes`);
  if (spec.max_bytes) hints.push(`≤ ${spec.max_bytes} bytes`);
  if (typeof spec.min === 'number' || typeof spec.max === 'number') hints.push(`${spec.min ?? '…'} to ${spec.max ?? '…'}`);
  if (spec.pattern) hints.push(`pattern ${spec.pattern}`);
  const hint = el('span', 'hint', ` (${hints.join(', ')})`);
  label.append(hint);
  const wrap = el('div', 'exec-form');
  wrap.append(label, control);
  return wrap;
}

/**
 * The request object from the form: empty optional fields are left out; numbers and booleans
 * are sent as such (the server validates, so malformed values go as typed).
 * @param {HTMLElement} params
 * @param {Endpoint} ep
 */
function readRequest(params, ep) {
  /** @type {Record<string, unknown>} */
  const req = {};
  for (const node of params.querySelectorAll('[data-param]')) {
    const control = /** @type {HTMLInputElement} */ (node);
    const name = control.dataset.param ?? '';
    const spec = ep.params?.[name] ?? {};
    if (control.type === 'checkbox') {
      req[name] = control.checked;
      continue;
    }
    const value = control.value;
    if (value === '' && !spec.required) continue;
    if ((spec.type === 'integer' || spec.type === 'number') && value !== '' && Number.isFinite(Number(value))) {
      req[name] = Number(value);
    } else {
      req[name] = value;
    }
  }
  return req;
}

function main() {
  const select = /** @type {HTMLSelectElement} */ (byId('endpoint'));
  const info = byId('endpoint-info');
  const params = byId('params');
  const form = /** @type {HTMLFormElement} */ (byId('form'));
  const runButton = /** @type {HTMLButtonElement} */ (byId('run'));
  const stopButton = /** @type {HTMLButtonElement} */ (byId('stop'));
  const status = byId('status');
  const exit = byId('exit');
  const counts = byId('counts');
  const errorBox = byId('error');
  const errorText = byId('error-text');
  const stdinForm = /** @type {HTMLFormElement} */ (byId('stdin-form'));
  const stdinInput = /** @type {HTMLInputElement} */ (byId('stdin'));
  const stdinSend = /** @type {HTMLButtonElement} */ (byId('stdin-send'));
  const stdinEof = /** @type {HTMLButtonElement} */ (byId('stdin-eof'));
  const output = new Output(byId('output'));
  const tokenRow = byId('token-row');
  const tokenInput = /** @type {HTMLInputElement} */ (byId('token'));
  tokenInput.value = new URL(location.href).searchParams.get('token') ?? '';
  /** @type {Endpoint[]} */
  let endpoints = [];
  /** @type {Run | null} */
  let run = null;

  /** @param {string} message */
  const showError = (message) => {
    errorText.textContent = message;
    errorBox.hidden = !message;
  };

  const showCounts = () => {
    if (!run) {
      counts.textContent = '';
      return;
    }
    const bits = [`${run.lines.toLocaleString()} line${run.lines === 1 ? '' : 's'}`];
    if (run.stderrLines) bits.push(`${run.stderrLines.toLocaleString()} stderr/error`);
    counts.textContent = bits.join(' · ');
    counts.dataset.lines = String(run.lines);
  };
  output.onFlush = showCounts;

  const current = () => endpoints.find((e) => e.name === select.value);

  const buildForm = () => {
    const ep = current();
    params.replaceChildren();
    if (!ep) return;
    const bits = [endpointPath(ep)];
    if (ep.protocol) bits.push(`protocol ${ep.protocol}`);
    const timeout = ep.timeout_s ?? ep.timeout_secs;
    if (timeout) bits.push(`timeout ${timeout} s`);
    if (ep.stderr) bits.push(`stderr ${ep.stderr}`);
    info.textContent = bits.join(' · ');
    for (const [name, spec] of Object.entries(ep.params ?? {})) params.append(paramControl(name, spec ?? {}));
    stdinForm.hidden = !ep.stdin;
    tokenRow.hidden = !ep.token;
    const url = new URL(location.href);
    url.searchParams.set('endpoint', ep.name);
    history.replaceState(null, '', url);
  };

  /**
   * @param {string} state
   * @param {string} label
   * @param {Outcome} [outcome]
   */
  const setState = (state, label, outcome) => {
    status.dataset.state = state;
    status.textContent = label;
    const active = state === 'connecting' || state === 'running' || state === 'stopping';
    runButton.disabled = active || !current();
    stopButton.disabled = !active || state === 'stopping';
    select.disabled = active;
    stdinForm.hidden = !current()?.stdin;
    stdinSend.disabled = state !== 'running';
    stdinEof.disabled = state !== 'running';
    if (outcome) {
      exit.hidden = false;
      exit.textContent = outcome.exit === null ? outcome.label : `exit code ${outcome.exit}`;
      exit.dataset.ok = String(outcome.exit === 0);
      if (outcome.exit === null) delete exit.dataset.exit;
      else exit.dataset.exit = String(outcome.exit);
      if (state === 'stopped') status.textContent = 'stopped';
      else if (state === 'done') status.textContent = 'done';
    }
  };

  select.addEventListener('change', buildForm);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const ep = current();
    if (!ep || (run && !run.finished)) return;
    showError('');
    output.clear();
    exit.hidden = true;
    delete exit.dataset.exit;
    const token = ep.token ? tokenInput.value : undefined;
    run = new Run(ep, readRequest(params, ep), output, setState, showCounts, token);
    showCounts();
  });
  params.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) {
      ev.preventDefault();
      form.requestSubmit();
    }
  });
  stopButton.addEventListener('click', () => run?.stop());
  stdinForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (run?.sendStdin(stdinInput.value)) stdinInput.value = '';
  });
  stdinEof.addEventListener('click', () => run?.closeStdin());

  void (async () => {
    try {
      const res = await fetch('/exec/endpoints', { cache: 'no-store' });
      if (!res.ok) throw new Error(`GET /exec/endpoints: HTTP ${res.status}`);
      const list = await res.json();
      endpoints = Array.isArray(list) ? list : Array.isArray(list?.endpoints) ? list.endpoints : [];
    } catch (err) {
      showError(`Cannot list the exec endpoints: ${/** @type {Error} */ (err).message}`);
      select.replaceChildren(new Option('none', ''));
      return;
    }
    select.replaceChildren(...endpoints.map((e) => new Option(e.name, e.name)));
    if (endpoints.length === 0) {
      select.append(new Option('none configured', ''));
      showError('This server has no exec endpoints ([[exec]] entries in its config file).');
      return;
    }
    const wanted = new URL(location.href).searchParams.get('endpoint');
    if (wanted && endpoints.some((e) => e.name === wanted)) select.value = wanted;
    select.disabled = false;
    buildForm();
    setState('idle', 'idle');
  })();
}

if (typeof document !== 'undefined') main();
