// @ts-check
/**
 * ui-viz.js: the `viz` component of /ui, a live tree of Python variables.
 *
 * The hero sends `update {action, variableName, options: {path, valueRepresentation?,
 * keyRepresentation?, length?}}` (sidekick-py 0.0.7's). Each variable is a representation node
 * `{id, type, observableTracked, value, length?}`; the page applies the action at `path`, renders
 * the variables sorted by name (type and `[length]` on every node, containers expand and
 * collapse, the top level starts expanded, an ObservableValue's node has the class
 * `sk-viz-observable`) and highlights the changed node for 1.5 s (`sk-viz-changed`).
 *
 * An update that cannot be applied (unknown variable that is not a root `set`, a path that does
 * not resolve, a bad index) leaves the variable as it was and warns; nothing throws.
 *
 * Stable hooks for tests: `.sk-viz-var[data-var]` per variable; `.sk-viz-node[data-path]`
 * (the JSON of the path from the variable) with `data-type`; `.sk-viz-type`, `.sk-viz-len`,
 * `.sk-viz-value`, `.sk-viz-key`; `button.sk-viz-toggle[aria-expanded]`.
 */
import { isObj, str } from './ui-protocol.js';

/** @typedef {import('./ui-protocol.js').Obj} Obj */
/** @typedef {string | number | boolean} Segment */

/**
 * A representation node (sidekick-py 0.0.7's). `value` is a primitive, an array of nodes (list, set),
 * an array of `{key, value}` pairs (dict) or an object of nodes (object attributes).
 * @typedef {object} Rep
 * @property {string} [id]
 * @property {string} type
 * @property {boolean} [observableTracked]
 * @property {unknown} value
 * @property {number} [length]
 * @property {boolean} [stale] set by the page when the hero's update left the contents unknown
 */

/** How long a changed node stays highlighted. */
export const HIGHLIGHT_MS = 1500;

/** @param {unknown} v @returns {v is Rep} */
function isRep(v) {
  return isObj(v) && typeof v.type === 'string' && 'value' in v;
}

/** @param {unknown} v @returns {v is {key: Rep, value: Rep}} */
function isPair(v) {
  return isObj(v) && isRep(v.key) && isRep(v.value);
}

/** @param {Rep} node */
function isSeq(node) {
  return (node.type === 'list' || node.type === 'set') && Array.isArray(node.value);
}

/** @param {Rep} node */
function isDict(node) {
  return node.type === 'dict' && Array.isArray(node.value);
}

/** @param {Rep} node */
function isObjectNode(node) {
  return (node.type.startsWith('object') || node.type.startsWith('repr')) && isObj(node.value);
}

/**
 * The index of the dict pair whose key matches `seg` (by value, or by id as the stock UI does).
 * @param {Rep} dict
 * @param {unknown} seg
 */
function pairIndex(dict, seg) {
  const pairs = /** @type {unknown[]} */ (dict.value);
  return pairs.findIndex((p) => isPair(p) && (p.key.value === seg || p.key.id === String(seg)));
}

/**
 * The path segment that addresses a dict pair (its key's primitive value, else the key's id).
 * @param {{key: Rep}} pair
 * @param {number} index
 * @returns {Segment}
 */
function pairSegment(pair, index) {
  const k = pair.key.value;
  if (typeof k === 'string' || typeof k === 'number' || typeof k === 'boolean') return k;
  return pair.key.id ?? `#${index}`;
}

/**
 * Walk `path` from `root`; returns the node or `undefined`.
 * @param {Rep} root
 * @param {unknown[]} path
 * @returns {Rep | undefined}
 */
function walk(root, path) {
  /** @type {Rep | undefined} */
  let node = root;
  for (const seg of path) {
    if (!node) return undefined;
    if (isSeq(node)) {
      const arr = /** @type {unknown[]} */ (node.value);
      const idx = typeof seg === 'number' ? seg : Number(seg);
      const next = Number.isInteger(idx) ? arr[idx] : undefined;
      node = isRep(next) ? next : undefined;
    } else if (isDict(node)) {
      const k = pairIndex(node, seg);
      const pair = k >= 0 ? /** @type {unknown[]} */ (node.value)[k] : undefined;
      node = isPair(pair) ? pair.value : undefined;
    } else if (isObjectNode(node)) {
      const v = /** @type {Obj} */ (node.value)[String(seg)];
      node = isRep(v) ? v : undefined;
    } else {
      return undefined;
    }
  }
  return node;
}

/**
 * A list index from a path segment, or throws.
 * @param {unknown} seg
 * @param {number} max the largest index allowed
 */
function index(seg, max) {
  const i = typeof seg === 'number' ? seg : Number(seg);
  if (!Number.isInteger(i) || i < 0 || i > max) throw new Error(`index ${String(seg)} out of range 0..${max}`);
  return i;
}

/**
 * Structural equality of two primitive representations (for set membership).
 * @param {unknown} a
 * @param {Rep} b
 */
function samePrimitive(a, b) {
  return isRep(a) && a.type === b.type && typeof a.value !== 'object' && a.value === b.value;
}

/**
 * Apply one action to a copy of the variable's tree. Returns the new root, or `null` when the
 * variable is to be removed. Throws when the action cannot be applied (the caller keeps the old
 * tree).
 * @param {Rep | undefined} current
 * @param {string} action
 * @param {unknown[]} path
 * @param {Obj} options
 * @returns {Rep | null}
 */
export function applyVizAction(current, action, path, options) {
  if (action === 'removeVariable') return null;
  const rep = options.valueRepresentation;
  const keyRep = options.keyRepresentation;
  const newLength = typeof options.length === 'number' ? options.length : undefined;
  if (!current) {
    if (action === 'set' && path.length === 0 && isRep(rep)) return structuredClone(rep);
    throw new Error(`no such variable, and "${action}" with path ${JSON.stringify(path)} cannot create it`);
  }
  if (action === 'set' && path.length === 0) {
    if (!isRep(rep)) throw new Error('set without a valueRepresentation');
    return structuredClone(rep);
  }
  const root = structuredClone(current);
  const parent = path.length === 0 ? root : walk(root, path.slice(0, -1));
  if (!parent) throw new Error(`path ${JSON.stringify(path)} does not resolve`);
  const seg = path[path.length - 1];
  /** @param {number | undefined} fallback */
  const setLength = (fallback) => {
    if (newLength !== undefined) parent.length = newLength;
    else if (fallback !== undefined) parent.length = fallback;
  };
  switch (action) {
    case 'set':
    case 'setitem': {
      if (!isRep(rep)) throw new Error(`${action} without a valueRepresentation`);
      if (isSeq(parent)) {
        const arr = /** @type {unknown[]} */ (parent.value);
        const i = index(seg, arr.length);
        if (i === arr.length) arr.push(rep);
        else arr[i] = rep;
        setLength(arr.length);
      } else if (isDict(parent)) {
        const pairs = /** @type {unknown[]} */ (parent.value);
        const k = pairIndex(parent, seg);
        if (k >= 0) {
          /** @type {{key: Rep, value: Rep}} */ (pairs[k]).value = rep;
        } else {
          const key = isRep(keyRep) ? keyRep : { type: typeof seg === 'number' ? 'int' : 'str', value: seg };
          pairs.push({ key, value: rep });
        }
        setLength(pairs.length);
      } else if (isObjectNode(parent)) {
        /** @type {Obj} */ (parent.value)[String(seg)] = rep;
        setLength(Object.keys(/** @type {Obj} */ (parent.value)).length);
      } else {
        throw new Error(`${action} on a ${parent.type}`);
      }
      break;
    }
    case 'append':
    case 'insert': {
      if (!isRep(rep)) throw new Error(`${action} without a valueRepresentation`);
      if (parent.type !== 'list' || !Array.isArray(parent.value)) throw new Error(`${action} on a ${parent.type}`);
      const arr = parent.value;
      const i = action === 'append' ? arr.length : index(seg, arr.length);
      arr.splice(i, 0, rep);
      setLength(arr.length);
      break;
    }
    case 'pop':
    case 'remove':
    case 'delitem': {
      if (path.length === 0) throw new Error(`${action} needs a path`);
      if (isSeq(parent)) {
        const arr = /** @type {unknown[]} */ (parent.value);
        arr.splice(index(seg, arr.length - 1), 1);
        setLength(arr.length);
      } else if (isDict(parent)) {
        const k = pairIndex(parent, seg);
        if (k < 0) throw new Error(`no key ${JSON.stringify(seg)}`);
        /** @type {unknown[]} */ (parent.value).splice(k, 1);
        setLength(/** @type {unknown[]} */ (parent.value).length);
      } else if (isObjectNode(parent)) {
        delete (/** @type {Obj} */ (parent.value))[String(seg)];
        setLength(Object.keys(/** @type {Obj} */ (parent.value)).length);
      } else {
        throw new Error(`${action} on a ${parent.type}`);
      }
      break;
    }
    case 'add_set':
    case 'discard_set': {
      const set = path.length === 0 ? root : walk(root, path);
      if (!set || set.type !== 'set' || !Array.isArray(set.value)) throw new Error(`${action} on a ${set?.type ?? 'missing node'}`);
      const items = set.value;
      if (action === 'add_set') {
        if (!isRep(rep)) throw new Error('add_set without a valueRepresentation');
        const known = items.some((x) => (isRep(x) && rep.id !== undefined && x.id === rep.id) || samePrimitive(x, rep));
        if (!known) items.push(rep);
      } else {
        // 0.0.7 sends a representation of None here, not of the discarded item:
        // remove a matching item when there is one, else keep the items and mark them stale.
        const k = isRep(rep) ? items.findIndex((x) => (isRep(x) && rep.type !== 'NoneType' && x.id === rep.id) || (isRep(rep) && rep.type !== 'NoneType' && samePrimitive(x, rep))) : -1;
        if (k >= 0) items.splice(k, 1);
        else if (newLength !== undefined && newLength !== items.length) set.stale = true;
      }
      if (newLength !== undefined) set.length = newLength;
      else set.length = items.length;
      break;
    }
    case 'clear': {
      const target = path.length === 0 ? root : walk(root, path);
      if (!target) throw new Error('clear: no such node');
      if (Array.isArray(target.value)) target.value = [];
      else if (isObj(target.value)) target.value = {};
      else throw new Error(`clear on a ${target.type}`);
      target.length = 0;
      break;
    }
    default:
      throw new Error(`unknown viz action "${action}"`);
  }
  return root;
}

/**
 * Python-style text of a primitive value.
 * @param {string} type
 * @param {unknown} v
 */
function primitiveText(type, v) {
  if (type === 'NoneType') return 'None';
  if (type === 'str' && typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  if (typeof v === 'number') {
    if (Number.isNaN(v)) return 'nan';
    if (v === Infinity) return 'inf';
    if (v === -Infinity) return '-inf';
    if (type === 'float' && Number.isInteger(v)) return `${v}.0`;
  }
  return str(v);
}

/** @param {string} type */
function typeClass(type) {
  return `sk-viz-type-${(type.split(' ')[0] || 'unknown').toLowerCase().replace(/[^a-z0-9]/g, '-')}`;
}

/** @param {unknown[]} a @param {unknown[]} b */
function samePath(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

export class Viz {
  /**
   * @param {string} id
   */
  constructor(id) {
    this.id = id;
    this.el = document.createElement('div');
    this.el.className = 'sk-viz';
    this.el.setAttribute('role', 'region');
    this.el.setAttribute('aria-label', `Variables (${id})`);
    /** @type {Map<string, Rep>} */
    this.vars = new Map();
    /** @type {Map<string, {path: unknown[], until: number}>} */
    this.changes = new Map();
    /** expand state by `name\0JSON(path)`; absent means the default (only the top level open) */
    /** @type {Map<string, boolean>} */
    this.expanded = new Map();
    /** @type {ReturnType<typeof setTimeout> | null} */
    this.timer = null;
    this.render();
  }

  /**
   * @param {string} action
   * @param {Obj} options
   * @param {Obj} payload
   */
  update(action, options, payload) {
    const name = payload.variableName;
    if (typeof name !== 'string') {
      console.warn(`ui: viz ${this.id}: update without variableName`, payload);
      return;
    }
    const path = Array.isArray(options.path) ? options.path : [];
    let next;
    try {
      next = applyVizAction(this.vars.get(name), action, path, options);
    } catch (err) {
      console.warn(`ui: viz ${this.id}: cannot apply "${action}" to ${JSON.stringify(name)}:`, /** @type {Error} */ (err).message);
      return;
    }
    if (next === null) {
      this.vars.delete(name);
      this.changes.delete(name);
      for (const k of [...this.expanded.keys()]) if (k.startsWith(`${name}\u0000`)) this.expanded.delete(k);
    } else {
      this.vars.set(name, next);
      const removal = action === 'pop' || action === 'remove' || action === 'delitem';
      this.changes.set(name, { path: removal ? path.slice(0, -1) : path, until: Date.now() + HIGHLIGHT_MS });
      this.scheduleUnhighlight();
    }
    this.render();
  }

  destroy() {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  scheduleUnhighlight() {
    if (this.timer) clearTimeout(this.timer);
    let next = Infinity;
    for (const c of this.changes.values()) next = Math.min(next, c.until);
    if (next === Infinity) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      const now = Date.now();
      for (const [name, c] of [...this.changes]) {
        if (c.until <= now) {
          this.changes.delete(name);
          const varEl = [...this.el.querySelectorAll('.sk-viz-var')].find((e) => /** @type {HTMLElement} */ (e).dataset.var === name);
          for (const n of varEl?.querySelectorAll('.sk-viz-changed') ?? []) n.classList.remove('sk-viz-changed');
        }
      }
      this.scheduleUnhighlight();
    }, Math.max(0, next - Date.now()));
  }

  render() {
    const names = [...this.vars.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    if (names.length === 0) {
      const p = document.createElement('p');
      p.className = 'sk-viz-empty';
      p.textContent = 'No variables shown yet.';
      this.el.replaceChildren(p);
      return;
    }
    const list = document.createElement('ul');
    list.className = 'sk-viz-vars';
    const now = Date.now();
    for (const name of names) {
      const li = document.createElement('li');
      li.className = 'sk-viz-var';
      li.dataset.var = name;
      const change = this.changes.get(name);
      const label = document.createElement('span');
      label.className = 'sk-viz-name';
      label.textContent = name;
      const ctx = { name, change: change && change.until > now ? change.path : null };
      li.append(this.renderNode(/** @type {Rep} */ (this.vars.get(name)), [label, ' = '], [], 0, ctx));
      list.append(li);
    }
    this.el.replaceChildren(list);
  }

  /**
   * @param {Rep} node
   * @param {(Node | string)[]} label what precedes the type (name, index or key)
   * @param {Segment[]} path
   * @param {number} depth
   * @param {{name: string, change: unknown[] | null}} ctx
   * @returns {HTMLElement}
   */
  renderNode(node, label, path, depth, ctx) {
    const box = document.createElement('div');
    box.className = `sk-viz-node ${typeClass(node.type)}`;
    if (node.observableTracked) box.classList.add('sk-viz-observable');
    if (node.stale) {
      box.classList.add('sk-viz-stale');
      box.title = 'The hero removed an item without saying which; the items shown may be out of date.';
    }
    if (ctx.change && samePath(ctx.change, path)) box.classList.add('sk-viz-changed');
    box.dataset.path = JSON.stringify(path);
    box.dataset.type = node.type;

    const head = document.createElement('div');
    head.className = 'sk-viz-head';
    /** @type {Segment[]} */
    const childPaths = [];
    /** @type {(Node | string)[][]} */
    const childLabels = [];
    /** @type {Rep[]} */
    const childNodes = [];
    const v = node.value;
    if (Array.isArray(v) && (node.type === 'list' || node.type === 'set' || node.type === 'dict')) {
      v.forEach((item, i) => {
        if (node.type === 'dict') {
          if (!isPair(item)) return;
          const key = document.createElement('span');
          key.className = 'sk-viz-key';
          key.textContent = typeof item.key.value === 'object' ? item.key.type : primitiveText(item.key.type, item.key.value);
          childNodes.push(item.value);
          childPaths.push(pairSegment(item, i));
          childLabels.push([key, ': ']);
        } else {
          if (!isRep(item)) return;
          childNodes.push(item);
          childPaths.push(i);
          if (node.type === 'list') {
            const key = document.createElement('span');
            key.className = 'sk-viz-key';
            key.textContent = String(i);
            childLabels.push([key, ': ']);
          } else {
            childLabels.push([]);
          }
        }
      });
    } else if (isObj(v) && isObjectNode(node)) {
      for (const [attr, item] of Object.entries(v)) {
        if (!isRep(item)) continue;
        const key = document.createElement('span');
        key.className = 'sk-viz-key sk-viz-attr';
        key.textContent = `.${attr}`;
        childNodes.push(item);
        childPaths.push(attr);
        childLabels.push([key, ': ']);
      }
    }
    const expandable = childNodes.length > 0;
    const stateKey = `${ctx.name}\u0000${JSON.stringify(path)}`;
    const open = expandable && (this.expanded.get(stateKey) ?? depth === 0);
    if (expandable) {
      const toggle = document.createElement('button');
      toggle.type = 'button';
      toggle.className = 'sk-viz-toggle';
      toggle.setAttribute('aria-expanded', String(open));
      toggle.setAttribute('aria-label', `${open ? 'Collapse' : 'Expand'} ${ctx.name}${path.map((p) => `[${JSON.stringify(p)}]`).join('')}`);
      toggle.textContent = open ? '▾' : '▸';
      toggle.addEventListener('click', () => {
        this.expanded.set(stateKey, !open);
        this.render();
      });
      head.append(toggle);
    } else {
      const pad = document.createElement('span');
      pad.className = 'sk-viz-toggle-pad';
      head.append(pad);
    }
    head.append(...label);
    const type = document.createElement('span');
    type.className = 'sk-viz-type';
    type.textContent = node.type;
    head.append(type);
    if (typeof node.length === 'number') {
      const len = document.createElement('span');
      len.className = 'sk-viz-len';
      len.textContent = `[${node.length}]`;
      head.append(len);
    }
    if (typeof v !== 'object' || v === null) {
      const val = document.createElement('span');
      val.className = `sk-viz-value sk-viz-value-${typeof v}`;
      val.textContent = primitiveText(node.type, v);
      head.append(': ', val);
    }
    box.append(head);
    if (open) {
      const ul = document.createElement('ul');
      ul.className = 'sk-viz-children';
      childNodes.forEach((child, i) => {
        const li = document.createElement('li');
        li.append(this.renderNode(child, childLabels[i], [...path, childPaths[i]], depth + 1, ctx));
        ul.append(li);
      });
      box.append(ul);
    }
    return box;
  }
}
