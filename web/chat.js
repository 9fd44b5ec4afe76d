// @ts-check
/**
 * chat.js: the chat page (/chat). Plain ES module on top of RoomsClient.
 *
 * Stable element ids (used by tests/browser/chat.test.mjs):
 *   #name #room #connect       log-in form
 *   #status                    connection state: data-state = disconnected | connecting | connected | reconnecting
 *   #rooms                     joined rooms (li[data-room], .current for the shown one)
 *   #members                   members of the shown room: li[data-client][data-status]
 *   #messages                  the shown room's log: li[data-kind][data-from][data-room]
 *                              (data-kind = message | direct | self | system)
 *   #text #send                composer ("/to name text" sends a direct message)
 *   #other-room #join-room #create-room #pause #leave #disconnect
 *   #error                     the last error (hidden when none)
 */
import { RoomsClient, TetherError } from './tether-client.js';

/** @typedef {import('./tether-client.js').Member} Member */
/** @typedef {import('./tether-client.js').Status} Status */
/** @typedef {import('./tether-client.js').JoinReply} JoinReply */

/**
 * One line of a room's log.
 * @typedef {object} Entry
 * @property {'message' | 'direct' | 'self' | 'system'} kind
 * @property {string} text
 * @property {Date} at
 * @property {string} [from]
 * @property {string} [to] for direct messages
 * @property {'sending' | 'sent' | 'failed'} [state] for the user's own messages
 * @property {HTMLLIElement} [li] its element while rendered
 */

/**
 * @typedef {object} RoomState
 * @property {Map<string, Status>} members
 * @property {Entry[]} log
 * @property {number} unread
 * @property {boolean} paused
 */

const NAME_RE = /^[A-Za-z0-9_.-]{1,64}$/;
const MAX_LOG = 500; // entries kept per room
const POLL_MS = 5000; // member statuses are refreshed this often (the protocol pushes only joins and leaves)
const STORAGE_KEY = 'tether.chat.name';

/**
 * @template {HTMLElement} T
 * @param {string} id
 * @param {{new (): T, prototype: T}} type
 * @returns {T}
 */
function byId(id, type) {
  const el = document.getElementById(id);
  if (!(el instanceof type)) throw new Error(`chat.html: #${id} is missing or not a ${type.name}`);
  return el;
}

const ui = {
  status: byId('status', HTMLElement),
  me: byId('me', HTMLElement),
  error: byId('error', HTMLElement),
  errorText: byId('error-text', HTMLElement),
  errorClose: byId('error-close', HTMLButtonElement),
  notice: byId('notice', HTMLElement),
  login: byId('login', HTMLElement),
  loginForm: byId('login-form', HTMLFormElement),
  name: byId('name', HTMLInputElement),
  room: byId('room', HTMLInputElement),
  connect: byId('connect', HTMLButtonElement),
  chat: byId('chat', HTMLElement),
  rooms: byId('rooms', HTMLUListElement),
  roomForm: byId('room-form', HTMLFormElement),
  otherRoom: byId('other-room', HTMLInputElement),
  joinRoom: byId('join-room', HTMLButtonElement),
  createRoom: byId('create-room', HTMLButtonElement),
  memberCount: byId('member-count', HTMLElement),
  members: byId('members', HTMLUListElement),
  currentRoom: byId('current-room', HTMLElement),
  pause: byId('pause', HTMLButtonElement),
  leave: byId('leave', HTMLButtonElement),
  disconnect: byId('disconnect', HTMLButtonElement),
  messages: byId('messages', HTMLOListElement),
  composer: byId('composer', HTMLFormElement),
  text: byId('text', HTMLInputElement),
  send: byId('send', HTMLButtonElement),
};

/** @type {RoomsClient | null} */
let client = null;
/** the user's client name while logged in */
let me = '';
/** @type {Map<string, RoomState>} */
const rooms = new Map();
/** the room shown */
let current = '';
/** @type {(() => void)[]} */
let unsubscribers = [];
/** @type {ReturnType<typeof setInterval> | null} */
let pollTimer = null;
/** @type {ReturnType<typeof setTimeout> | null} */
let noticeTimer = null;

// --- feedback --------------------------------------------------------------------------------

/**
 * @param {'disconnected' | 'connecting' | 'connected' | 'reconnecting'} state
 */
function setStatus(state) {
  ui.status.dataset.state = state;
  ui.status.textContent = state === 'connecting' || state === 'reconnecting' ? `${state}…` : state;
}

/** Human text for an error from the client or the server. @param {unknown} err */
function describe(err) {
  if (!(err instanceof TetherError)) return err instanceof Error ? err.message : String(err);
  switch (err.code) {
    case 'NAME_TAKEN': return `That name is already taken. ${err.message}`;
    case 'BAD_NAME': return `Invalid name: use 1–64 characters from A–Z a–z 0–9 _ - . (${err.message})`;
    case 'TOO_LONG': return `Message too long: ${err.message}`;
    case 'SERVER_FULL': return `The server is full, try again later. (${err.message})`;
    case 'TIMEOUT': return 'The server did not answer in time: is it running?';
    case 'DISCONNECTED': return 'The connection dropped before the server answered; please retry.';
    case 'CLOSED': return 'Not connected.';
    default: return `${err.code}: ${err.message}`;
  }
}

/** @param {unknown} err */
function showError(err) {
  ui.errorText.textContent = typeof err === 'string' ? err : describe(err);
  ui.error.hidden = false;
}

function clearError() {
  ui.error.hidden = true;
  ui.errorText.textContent = '';
}

/** @param {string} text */
function showNotice(text) {
  ui.notice.textContent = text;
  ui.notice.hidden = false;
  if (noticeTimer !== null) clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => {
    ui.notice.hidden = true;
    noticeTimer = null;
  }, 5000);
}

// --- state -----------------------------------------------------------------------------------

/** @param {string} room @returns {RoomState} */
function roomState(room) {
  let st = rooms.get(room);
  if (!st) {
    st = { members: new Map(), log: [], unread: 0, paused: false };
    rooms.set(room, st);
    renderRooms();
  }
  return st;
}

/**
 * @param {string} room
 * @param {Member[]} members
 */
function setMembers(room, members) {
  const st = rooms.get(room);
  if (!st) return;
  st.members = new Map(members.map((m) => [m.client, m.status]));
  const mine = st.members.get(me);
  if (mine) st.paused = mine === 'SUSPENDED';
  if (room === current) {
    renderMembers();
    renderRoomHeader();
  }
}

/**
 * @param {string} room
 * @param {string} name
 * @param {Status | null} status null: removed
 */
function setMember(room, name, status) {
  const st = rooms.get(room);
  if (!st) return;
  if (status === null) st.members.delete(name);
  else st.members.set(name, status);
  if (room === current) renderMembers();
}

/**
 * Add an entry to a room's log (and to the page if the room is shown).
 * @param {string} room
 * @param {Entry} entry
 */
function addEntry(room, entry) {
  const st = rooms.get(room);
  if (!st) return;
  st.log.push(entry);
  if (st.log.length > MAX_LOG) {
    const dropped = st.log.splice(0, st.log.length - MAX_LOG);
    for (const e of dropped) e.li?.remove();
  }
  if (room === current) {
    const nearBottom = ui.messages.scrollHeight - ui.messages.scrollTop - ui.messages.clientHeight < 60;
    ui.messages.append(entryElement(room, entry));
    if (nearBottom || entry.kind === 'self') ui.messages.scrollTop = ui.messages.scrollHeight;
  } else if (entry.kind !== 'system') {
    st.unread += 1;
    renderRooms();
  }
}

// --- rendering -------------------------------------------------------------------------------

/**
 * @param {string} tag
 * @param {string} className
 * @param {string} [text]
 */
function node(tag, className, text) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

/** @param {Date} d */
function clock(d) {
  return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

/**
 * @param {string} room
 * @param {Entry} entry
 * @returns {HTMLLIElement}
 */
function entryElement(room, entry) {
  const li = document.createElement('li');
  li.className = `entry entry-${entry.kind}`;
  li.dataset.kind = entry.kind;
  li.dataset.room = room;
  if (entry.from !== undefined) li.dataset.from = entry.from;
  if (entry.state) li.dataset.state = entry.state;
  const time = node('time', 'at', clock(entry.at));
  time.setAttribute('datetime', entry.at.toISOString());
  li.append(time);
  if (entry.kind === 'system') {
    li.append(node('span', 'text', entry.text));
  } else {
    let who = entry.from ?? '';
    if (entry.kind === 'direct') who = entry.to !== undefined ? `${who} → ${entry.to}` : `${who} (direct)`;
    li.append(node('span', 'from', who), node('span', 'text', entry.text));
  }
  if (entry.state === 'failed') li.title = 'not delivered';
  entry.li = li;
  return li;
}

function renderRooms() {
  ui.rooms.replaceChildren(
    ...[...rooms.keys()].map((room) => {
      const st = /** @type {RoomState} */ (rooms.get(room));
      const li = document.createElement('li');
      li.dataset.room = room;
      if (room === current) li.classList.add('current');
      const btn = node('button', 'room-button');
      btn.setAttribute('type', 'button');
      btn.append(node('span', 'room-name', room));
      if (st.paused) btn.append(node('span', 'badge badge-muted', 'paused'));
      if (st.unread > 0) btn.append(node('span', 'badge', String(st.unread)));
      btn.addEventListener('click', () => switchRoom(room));
      li.append(btn);
      return li;
    }),
  );
}

function renderMembers() {
  const st = rooms.get(current);
  const names = st ? [...st.members.keys()].sort() : [];
  ui.memberCount.textContent = st ? `(${names.length})` : '';
  ui.members.replaceChildren(
    ...names.map((name) => {
      const status = /** @type {Status} */ (st?.members.get(name));
      const li = document.createElement('li');
      li.dataset.client = name;
      li.dataset.status = status;
      li.className = `member status-${status.toLowerCase()}`;
      li.append(node('span', 'dot'), node('span', 'member-name', name));
      if (name === me) li.append(node('span', 'you', '(you)'));
      li.append(node('span', 'member-status', status));
      li.title = `${name}: ${status}`;
      return li;
    }),
  );
}

function renderRoomHeader() {
  const st = rooms.get(current);
  ui.currentRoom.textContent = current ? `# ${current}` : 'No room';
  ui.pause.disabled = !st;
  ui.leave.disabled = !st;
  ui.pause.textContent = st?.paused ? 'Resume' : 'Pause';
  ui.text.disabled = !st;
  ui.send.disabled = !st;
}

function renderMessages() {
  const st = rooms.get(current);
  ui.messages.replaceChildren(...(st ? st.log.map((e) => entryElement(current, e)) : []));
  ui.messages.scrollTop = ui.messages.scrollHeight;
}

/** @param {string} room */
function switchRoom(room) {
  current = rooms.has(room) ? room : (rooms.keys().next().value ?? '');
  const st = rooms.get(current);
  if (st) st.unread = 0;
  renderRooms();
  renderRoomHeader();
  renderMembers();
  renderMessages();
  if (current) void refreshMembers(current);
}

// --- server interaction ----------------------------------------------------------------------

/** Re-read a room's member statuses (status changes other than joins and leaves are not pushed). @param {string} room */
async function refreshMembers(room) {
  const c = client;
  if (!c || !c.connected || !rooms.has(room)) return;
  try {
    const reply = await c.list('CLIENTS_FOR_CHAT_ROOM', room);
    const info = reply.rooms.find((r) => r.room === room);
    if (info && c === client) setMembers(room, info.members);
  } catch {
    // The room may have just gone away, or the connection dropped: the next poll retries.
  }
}

/**
 * A room was joined (log-in, join, create, or re-join after a reconnect).
 * @param {JoinReply} reply
 */
function joined(reply) {
  // The member list itself arrives right after, in the presence push.
  roomState(reply.room);
}

/** @param {RoomsClient} c */
function attach(c) {
  unsubscribers = [
    c.on('message', (m) => {
      setMember(m.room, m.from, 'ACTIVE'); // sending makes (and keeps) a member ACTIVE
      addEntry(m.room, { kind: 'message', from: m.from, text: m.text, at: new Date() });
    }),
    c.on('direct', (m) => {
      setMember(m.room, m.from, 'ACTIVE');
      addEntry(m.room, { kind: 'direct', from: m.from, text: m.text, at: new Date() });
    }),
    c.on('join', (p) => {
      if (p.client === me) return;
      setMember(p.room, p.client, 'CONNECTED');
      addEntry(p.room, { kind: 'system', text: `${p.client} joined`, at: new Date() });
    }),
    c.on('leave', (p) => {
      if (p.client === me) return;
      setMember(p.room, p.client, null);
      addEntry(p.room, { kind: 'system', text: `${p.client} left`, at: new Date() });
    }),
    c.on('presence', (p) => {
      roomState(p.room);
      setMembers(p.room, p.members);
    }),
    c.on('bye', (b) => {
      showNotice(`Server closing the connection: ${b.reason}. Reconnecting…`);
    }),
    c.on('connected', (up) => {
      if (up) {
        setStatus('connected');
        for (const room of rooms.keys()) void refreshMembers(room);
      } else if (c === client) {
        setStatus('reconnecting');
      }
    }),
    c.on('rejoin', (r) => {
      if (r.ok) return;
      showError(`Could not rejoin ${r.room}: ${describe(r.error)}`);
      rooms.delete(r.room);
      if (current === r.room) switchRoom('');
      else renderRooms();
    }),
    c.on('close', (info) => {
      if (!info.willRetry && c === client) {
        leaveChat();
        showError(`Disconnected (${info.code}${info.reason ? `: ${info.reason}` : ''}).`);
      }
    }),
    c.on('error', (err) => showError(err)),
  ];
}

function detach() {
  for (const off of unsubscribers) off();
  unsubscribers = [];
}

/** Back to the log-in form. */
function leaveChat() {
  detach();
  client = null;
  me = '';
  current = '';
  rooms.clear();
  if (pollTimer !== null) clearInterval(pollTimer);
  pollTimer = null;
  ui.chat.hidden = true;
  ui.login.hidden = false;
  ui.me.hidden = true;
  setStatus('disconnected');
  ui.connect.disabled = false;
  ui.name.focus();
}

/**
 * Log in: connect, register as `name` in `room` (created if it does not exist).
 * @param {string} name
 * @param {string} room
 */
async function logIn(name, room) {
  clearError();
  if (!NAME_RE.test(name)) {
    showError('Choose a name of 1–64 characters from A–Z a–z 0–9 _ - .');
    ui.name.focus();
    return;
  }
  if (!NAME_RE.test(room)) {
    showError('Room names are 1–64 characters from A–Z a–z 0–9 _ - .');
    ui.room.focus();
    return;
  }
  ui.connect.disabled = true;
  setStatus('connecting');
  const c = new RoomsClient();
  client = c;
  me = name;
  attach(c);
  try {
    /** @type {JoinReply} */
    let reply;
    try {
      reply = await c.hello(room, name);
    } catch (err) {
      if (!(err instanceof TetherError && err.code === 'NO_SUCH_ROOM')) throw err;
      reply = await c.newRoom(room, name);
      showNotice(`Created room ${room}.`);
    }
    try {
      localStorage.setItem(STORAGE_KEY, name);
    } catch {
      // storage may be disabled
    }
    ui.login.hidden = true;
    ui.chat.hidden = false;
    ui.me.textContent = name;
    ui.me.hidden = false;
    joined(reply);
    switchRoom(reply.room);
    setStatus(c.connected ? 'connected' : 'reconnecting');
    pollTimer = setInterval(() => void refreshMembers(current), POLL_MS);
    ui.text.focus();
  } catch (err) {
    c.close();
    leaveChat();
    showError(err);
  } finally {
    ui.connect.disabled = false;
  }
}

/** @param {'join' | 'create'} how */
async function otherRoom(how) {
  const c = client;
  if (!c) return;
  const room = ui.otherRoom.value.trim();
  clearError();
  if (!NAME_RE.test(room)) {
    showError('Room names are 1–64 characters from A–Z a–z 0–9 _ - .');
    return;
  }
  if (rooms.has(room)) {
    switchRoom(room);
    ui.otherRoom.value = '';
    return;
  }
  try {
    const reply = how === 'create' ? await c.newRoom(room) : await c.join(room);
    joined(reply);
    switchRoom(reply.room);
    ui.otherRoom.value = '';
    ui.text.focus();
  } catch (err) {
    if (err instanceof TetherError && err.code === 'NO_SUCH_ROOM') {
      showError(`Room ${room} does not exist: use Create to make it.`);
    } else if (err instanceof TetherError && err.code === 'ROOM_EXISTS') {
      showError(`Room ${room} already exists: use Join.`);
    } else {
      showError(err);
    }
  }
}

async function sendText() {
  const c = client;
  const room = current;
  const raw = ui.text.value;
  if (!c || !room || raw.trim() === '') return;
  clearError();
  /** @type {Entry} */
  let entry;
  /** @type {Promise<unknown>} */
  let request;
  const direct = /^\/to\s+(\S+)\s+([\s\S]+)$/.exec(raw);
  if (raw.startsWith('/to')) {
    if (!direct) {
      showError('Direct message: /to name text');
      return;
    }
    const [, target, text] = direct;
    entry = { kind: 'direct', from: me, to: target, text, at: new Date(), state: 'sending' };
    request = c.to(room, target, text);
  } else {
    entry = { kind: 'self', from: me, text: raw, at: new Date(), state: 'sending' };
    request = c.send(room, raw);
  }
  ui.text.value = '';
  addEntry(room, entry);
  try {
    await request;
    entry.state = 'sent';
    setMember(room, me, 'ACTIVE');
    const st = rooms.get(room);
    if (st && st.paused) {
      st.paused = false; // sending resumes a paused membership
      if (room === current) renderRoomHeader();
      renderRooms();
    }
  } catch (err) {
    entry.state = 'failed';
    showError(err);
  }
  if (entry.li) {
    entry.li.dataset.state = entry.state;
    if (entry.state === 'failed') entry.li.title = 'not delivered';
  }
}

async function togglePause() {
  const c = client;
  const room = current;
  const st = rooms.get(room);
  if (!c || !st) return;
  clearError();
  try {
    if (st.paused) await c.resume(room);
    else await c.pause(room);
    st.paused = !st.paused;
    renderRoomHeader();
    renderRooms();
    await refreshMembers(room);
  } catch (err) {
    showError(err);
  }
}

async function leaveRoom() {
  const c = client;
  const room = current;
  if (!c || !rooms.has(room)) return;
  clearError();
  try {
    await c.leave(room);
    rooms.delete(room);
    switchRoom('');
    if (rooms.size === 0) showNotice('You are in no room: join or create one.');
  } catch (err) {
    showError(err);
  }
}

async function disconnect() {
  const c = client;
  if (!c) return;
  leaveChat();
  try {
    await c.quit();
  } catch {
    c.close();
  }
}

// --- wiring ----------------------------------------------------------------------------------

ui.loginForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  void logIn(ui.name.value.trim(), ui.room.value.trim() || 'main');
});
ui.roomForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  void otherRoom('join');
});
ui.createRoom.addEventListener('click', () => void otherRoom('create'));
ui.composer.addEventListener('submit', (ev) => {
  ev.preventDefault();
  void sendText();
});
ui.pause.addEventListener('click', () => void togglePause());
ui.leave.addEventListener('click', () => void leaveRoom());
ui.disconnect.addEventListener('click', () => void disconnect());
ui.errorClose.addEventListener('click', clearError);

// Prefill from ?name=&room= or the last name used.
{
  const params = new URLSearchParams(location.search);
  let saved = null;
  try {
    saved = localStorage.getItem(STORAGE_KEY);
  } catch {
    // storage may be disabled
  }
  ui.name.value = params.get('name') ?? saved ?? '';
  ui.room.value = params.get('room') ?? ui.room.value;
  setStatus('disconnected');
  (ui.name.value ? ui.connect : ui.name).focus();
}
