// @ts-check
/**
 * ui-components.js: the component tree of /ui and its ten component types (sidekick-py 0.0.7's).
 *
 * `Renderer` keeps `id → component` and applies the hero's frames: `spawn` (appended to
 * `payload.parent`, default the root), `update` (`changeParent` moves the element itself, so a
 * canvas keeps its drawing and buffers; every other action goes to the component), `remove`
 * (the component and all its descendants) and `global/clearAll`. Bad input never throws out of
 * `Renderer.handle`: an unknown target, type or action, a duplicate id or an invalid payload is
 * ignored with a `console.warn`.
 *
 * A spawn whose parent does not exist (or is not a container) is kept detached as an orphan of
 * that id, as the stock UI does; if a container with that id is spawned later it adopts them.
 *
 * Stable hooks (used by tests/browser/ui.test.mjs): every component's element has
 * `data-sk-id` (instance id) and `data-sk-type`, plus the classes `sk-component sk-<type>`.
 * Grid cells are `.sk-cell[data-x][data-y]` (`data-color` holds the colour string the hero set);
 * console lines are `.sk-console-line`; the console input is `.sk-console-input` with
 * `.sk-console-send`.
 */
import { ROOT_ID, errorFrame, eventFrame, isObj, str } from './ui-protocol.js';
import { renderMarkdown } from './ui-markdown.js';
import { Viz } from './ui-viz.js';

/** @typedef {import('./ui-protocol.js').Obj} Obj */
/** @typedef {(frame: Obj) => void} Send */

/** Largest grid the page builds (cells are DOM elements). */
export const MAX_GRID_CELLS = 65_536;
/** Largest canvas side in pixels (browsers fail well before the memory is gone past this). */
export const MAX_CANVAS_SIDE = 8192;
/** Lines a console keeps; older lines are dropped. */
export const MAX_CONSOLE_LINES = 5000;

/** An invalid spawn payload: the spawn is ignored and the hero gets an `error` frame. */
class SpawnError extends Error {}

/**
 * A positive integer, or 0 when `v` is not one.
 * @param {unknown} v
 */
function posInt(v) {
  return typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : 0;
}

/** Common behaviour: identity, the element, unknown actions, sending events. */
class Base {
  /**
   * @param {string} id
   * @param {string} type
   * @param {HTMLElement} el
   * @param {Send} send
   */
  constructor(id, type, el, send) {
    this.id = id;
    this.type = type;
    this.el = el;
    this.send = send;
    /** where children go: set by containers only */
    /** @type {HTMLElement | null} */
    this.slot = null;
    /** the parent's id (`root` for top level; an orphan's missing parent otherwise) */
    this.parentId = ROOT_ID;
    el.dataset.skId = id;
    el.dataset.skType = type;
    el.classList.add('sk-component', `sk-${type}`);
  }

  /**
   * Apply one `update` (anything but `changeParent`, which the renderer handles).
   * @param {string} action
   * @param {Obj} _options
   * @param {Obj} _payload
   */
  update(action, _options, _payload) {
    this.unknown(action);
  }

  /** @param {string} action */
  unknown(action) {
    console.warn(`ui: ${this.type} ${JSON.stringify(this.id)}: unknown action ${JSON.stringify(action)} ignored`);
  }

  /** @param {Obj} payload */
  emit(payload) {
    this.send(eventFrame(this.type, this.id, payload));
  }

  /** Release timers and resources; the renderer removes the element. */
  destroy() {}
}

class Label extends Base {
  /** @param {string} id @param {Obj} p @param {Send} send */
  constructor(id, p, send) {
    super(id, 'label', document.createElement('div'), send);
    this.el.textContent = str(p.text);
  }

  /** @param {string} action @param {Obj} o @param {Obj} payload */
  update(action, o, payload) {
    if (action === 'setText') this.el.textContent = str(o.text);
    else super.update(action, o, payload);
  }
}

class Markdown extends Base {
  /** @param {string} id @param {Obj} p @param {Send} send */
  constructor(id, p, send) {
    super(id, 'markdown', document.createElement('div'), send);
    this.set(str(p.text));
  }

  /** @param {string} text */
  set(text) {
    this.el.replaceChildren(renderMarkdown(text));
  }

  /** @param {string} action @param {Obj} o @param {Obj} payload */
  update(action, o, payload) {
    if (action === 'setText') this.set(str(o.text));
    else super.update(action, o, payload);
  }
}

class Button extends Base {
  /** @param {string} id @param {Obj} p @param {Send} send */
  constructor(id, p, send) {
    const b = document.createElement('button');
    b.type = 'button';
    super(id, 'button', b, send);
    b.textContent = str(p.text);
    b.addEventListener('click', () => this.emit({ event: 'click' }));
  }

  /** @param {string} action @param {Obj} o @param {Obj} payload */
  update(action, o, payload) {
    if (action === 'setText') this.el.textContent = str(o.text);
    else super.update(action, o, payload);
  }
}

/**
 * A single-line input. Enter or leaving the field submits, but only when the text differs from
 * the last value submitted or set by the hero (so Enter then blur submits once).
 */
class Textbox extends Base {
  /** @param {string} id @param {Obj} p @param {Send} send */
  constructor(id, p, send) {
    const input = document.createElement('input');
    input.type = 'text';
    super(id, 'textbox', input, send);
    this.input = input;
    input.value = str(p.value);
    /** the last value submitted or set by the hero */
    this.baseline = input.value;
    this.setPlaceholder(str(p.placeholder));
    input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.isComposing) this.submit();
    });
    input.addEventListener('blur', () => this.submit());
  }

  /** @param {string} text */
  setPlaceholder(text) {
    this.input.placeholder = text;
    this.input.setAttribute('aria-label', text || `Text input ${this.id}`);
  }

  submit() {
    const value = this.input.value;
    if (value === this.baseline) return;
    this.baseline = value;
    this.emit({ event: 'submit', value });
  }

  /** @param {string} action @param {Obj} o @param {Obj} payload */
  update(action, o, payload) {
    if (action === 'setValue') {
      this.input.value = str(o.value);
      this.baseline = this.input.value;
    } else if (action === 'setPlaceholder') {
      this.setPlaceholder(str(o.placeholder));
    } else {
      super.update(action, o, payload);
    }
  }
}

/**
 * Output lines plus an optional input. `append` starts a new line when the previous text ended
 * with "\n" and joins the last line otherwise; a "\n" inside a line shows as a line break.
 */
class ConsoleBox extends Base {
  /** @param {string} id @param {Obj} p @param {Send} send */
  constructor(id, p, send) {
    super(id, 'console', document.createElement('div'), send);
    this.out = document.createElement('div');
    this.out.className = 'sk-console-output';
    this.out.setAttribute('role', 'log');
    this.out.setAttribute('aria-label', `Console ${id}`);
    this.out.tabIndex = 0;
    /** whether the last line is still open (its text did not end with "\n") */
    this.open = false;
    this.el.append(this.out);
    if (p.showInput === true) {
      const form = document.createElement('form');
      form.className = 'sk-console-form';
      const input = document.createElement('input');
      input.type = 'text';
      input.className = 'sk-console-input';
      input.autocomplete = 'off';
      input.setAttribute('aria-label', `Input for console ${id}`);
      input.placeholder = 'Type and press Enter';
      const button = document.createElement('button');
      button.type = 'submit';
      button.className = 'sk-console-send';
      button.textContent = 'Send';
      form.append(input, button);
      form.addEventListener('submit', (e) => {
        e.preventDefault();
        const value = input.value;
        if (value.trim() === '') return;
        this.emit({ event: 'submit', value });
        input.value = '';
      });
      this.el.append(form);
    }
    if (typeof p.text === 'string' && p.text !== '') this.append(p.text);
  }

  /** @param {string} text */
  append(text) {
    const last = this.out.lastElementChild;
    if (this.open && last instanceof HTMLElement) {
      this.appendTo(last, text); // joins the last line (only the new text is rendered)
    } else {
      const div = document.createElement('div');
      div.className = 'sk-console-line';
      this.appendTo(div, text);
      this.out.append(div);
      if (this.out.childElementCount > MAX_CONSOLE_LINES) this.out.firstElementChild?.remove();
    }
    this.open = !text.endsWith('\n');
    this.out.scrollTop = this.out.scrollHeight;
  }

  /**
   * Render `text` at the end of a line: inner "\n" become <br>, a final "\n" ends the line.
   * @param {HTMLElement} el
   * @param {string} text
   */
  appendTo(el, text) {
    const parts = (text.endsWith('\n') ? text.slice(0, -1) : text).split('\n');
    parts.forEach((part, i) => {
      if (i > 0) el.append(document.createElement('br'));
      if (part) el.append(part);
    });
  }

  /** @param {string} action @param {Obj} o @param {Obj} payload */
  update(action, o, payload) {
    if (action === 'append') {
      this.append(str(o.text));
    } else if (action === 'clear') {
      this.open = false;
      this.out.replaceChildren();
    } else {
      super.update(action, o, payload);
    }
  }
}

/** @type {CanvasRenderingContext2D | null | undefined} */
let colorCtx;
/** @type {Map<string, string>} */
const inkCache = new Map();

/**
 * A readable text colour (near-black or white) on the CSS colour `color`, or '' when the colour
 * cannot be parsed (the browser normalizes it through a 2D context's fillStyle).
 * @param {string} color
 */
function inkFor(color) {
  const known = inkCache.get(color);
  if (known !== undefined) return known;
  colorCtx ??= document.createElement('canvas').getContext('2d');
  let ink = '';
  if (colorCtx) {
    colorCtx.fillStyle = '#010203';
    colorCtx.fillStyle = color;
    const v = String(colorCtx.fillStyle);
    const hex = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(v);
    const rgba = /^rgba?\((\d+), (\d+), (\d+)(?:, ([\d.]+))?\)$/.exec(v);
    const rgb = hex ? hex.slice(1, 4).map((x) => parseInt(x, 16)) : rgba ? rgba.slice(1, 4).map(Number) : null;
    const alpha = rgba && rgba[4] !== undefined ? Number(rgba[4]) : 1;
    if (rgb && (v !== '#010203' || color.trim().toLowerCase() === '#010203') && alpha >= 0.5) {
      const [r, g, b] = rgb.map((c) => {
        const x = c / 255;
        return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4;
      });
      ink = 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.18 ? '#111' : '#fff';
    }
  }
  if (inkCache.size > 1000) inkCache.clear();
  inkCache.set(color, ink);
  return ink;
}

/**
 * Square cells (10–100 px, fitted to the width available, 1 px gaps) keyed by (x, y); x is the
 * column. Keyboard: arrow keys move between cells, Enter or Space clicks.
 */
class Grid extends Base {
  /** @param {string} id @param {Obj} p @param {Send} send */
  constructor(id, p, send) {
    const cols = posInt(p.numColumns);
    const rows = posInt(p.numRows);
    if (!cols || !rows) throw new SpawnError('numColumns and numRows must be positive integers');
    if (cols * rows > MAX_GRID_CELLS) throw new SpawnError(`a grid of ${cols}×${rows} cells is larger than this page allows (${MAX_GRID_CELLS} cells)`);
    super(id, 'grid', document.createElement('div'), send);
    this.cols = cols;
    this.rows = rows;
    const el = this.el;
    el.setAttribute('role', 'grid');
    el.setAttribute('aria-label', `Grid ${id}, ${cols} columns by ${rows} rows`);
    el.style.setProperty('--cols', String(cols));
    el.style.width = '100%';
    el.style.maxWidth = `${cols * 101 + 1}px`; // 100 px cells, 1 px gaps, 1 px border
    el.style.minWidth = `${cols * 11 + 1}px`; // 10 px cells
    /** @type {HTMLElement[]} */
    this.cells = [];
    for (let y = 0; y < rows; y++) {
      const row = document.createElement('div');
      row.className = 'sk-grid-row';
      row.setAttribute('role', 'row');
      for (let x = 0; x < cols; x++) {
        const cell = document.createElement('div');
        cell.className = 'sk-cell';
        cell.setAttribute('role', 'gridcell');
        cell.dataset.x = String(x);
        cell.dataset.y = String(y);
        cell.tabIndex = x === 0 && y === 0 ? 0 : -1;
        this.label(cell);
        row.append(cell);
        this.cells.push(cell);
      }
      el.append(row);
    }
    el.addEventListener('click', (e) => {
      const cell = this.cellOf(e.target);
      if (cell) this.click(cell);
    });
    el.addEventListener('keydown', (e) => this.key(e));
  }

  /** @param {EventTarget | null} t */
  cellOf(t) {
    const cell = t instanceof Element ? t.closest('.sk-cell') : null;
    return cell instanceof HTMLElement && this.el.contains(cell) ? cell : null;
  }

  /** @param {HTMLElement} cell */
  click(cell) {
    this.focus(cell);
    this.emit({ event: 'click', x: Number(cell.dataset.x), y: Number(cell.dataset.y) });
  }

  /** @param {HTMLElement} cell */
  focus(cell) {
    for (const c of this.el.querySelectorAll('.sk-cell[tabindex="0"]')) /** @type {HTMLElement} */ (c).tabIndex = -1;
    cell.tabIndex = 0;
  }

  /** @param {KeyboardEvent} e */
  key(e) {
    const cell = this.cellOf(e.target);
    if (!cell) return;
    const x = Number(cell.dataset.x);
    const y = Number(cell.dataset.y);
    /** @type {Record<string, [number, number]>} */
    const moves = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1], Home: [-x, 0], End: [this.cols - 1 - x, 0] };
    if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      this.click(cell);
    } else if (e.key in moves) {
      e.preventDefault();
      const [dx, dy] = moves[e.key];
      const next = this.at(x + dx, y + dy);
      if (next) {
        this.focus(next);
        next.focus();
      }
    }
  }

  /**
   * The cell at (x, y), or null when out of range.
   * @param {unknown} x
   * @param {unknown} y
   */
  at(x, y) {
    if (typeof x !== 'number' || typeof y !== 'number' || !Number.isInteger(x) || !Number.isInteger(y)) return null;
    if (x < 0 || y < 0 || x >= this.cols || y >= this.rows) return null;
    return this.cells[y * this.cols + x];
  }

  /** @param {HTMLElement} cell */
  label(cell) {
    const text = cell.textContent ?? '';
    const color = cell.dataset.color;
    cell.setAttribute('aria-label', `${cell.dataset.x},${cell.dataset.y}${text ? ` ${text}` : ''}${color ? ` (${color})` : ''}`);
  }

  /** @param {HTMLElement} cell @param {unknown} color */
  setColor(cell, color) {
    cell.style.backgroundColor = '';
    cell.style.color = '';
    if (color === null || color === undefined || color === '') {
      delete cell.dataset.color;
    } else {
      cell.dataset.color = str(color);
      cell.style.backgroundColor = str(color); // an invalid CSS colour is simply not applied
      const ink = inkFor(str(color));
      if (ink) cell.style.color = ink;
    }
    this.label(cell);
  }

  /** @param {HTMLElement} cell @param {unknown} text */
  setText(cell, text) {
    const t = text === null || text === undefined ? '' : str(text);
    cell.textContent = t;
    if (t) cell.style.setProperty('--len', String(Math.max(1, [...t].length)));
    else cell.style.removeProperty('--len');
    this.label(cell);
  }

  /** @param {string} action @param {Obj} o @param {Obj} payload */
  update(action, o, payload) {
    if (action === 'clear') {
      for (const cell of this.cells) {
        this.setColor(cell, null);
        this.setText(cell, null);
      }
      return;
    }
    if (action !== 'setColor' && action !== 'setText' && action !== 'clearCell') {
      super.update(action, o, payload);
      return;
    }
    const cell = this.at(o.x, o.y);
    if (!cell) {
      console.warn(`ui: grid ${JSON.stringify(this.id)}: ${action} at (${str(o.x)}, ${str(o.y)}) is outside ${this.cols}×${this.rows}; ignored`);
      return;
    }
    if (action === 'setColor') this.setColor(cell, o.color);
    else if (action === 'setText') this.setText(cell, o.text);
    else {
      this.setColor(cell, null);
      this.setText(cell, null);
    }
  }
}

/** @typedef {CanvasRenderingContext2D | OffscreenCanvasRenderingContext2D} Ctx2D */

/**
 * A `<canvas>` plus offscreen buffers (id > 0). Style options apply to one call (save/restore);
 * shapes given a fillColor are filled, rectangles, circles, polygons and ellipses are always
 * stroked. A failing draw sends an `error` frame for the canvas. Clicks report the pixel in the
 * canvas's own coordinates (scaled when CSS shrinks the element).
 */
class CanvasBox extends Base {
  /** @param {string} id @param {Obj} p @param {Send} send */
  constructor(id, p, send) {
    const w = posInt(p.width);
    const h = posInt(p.height);
    if (!w || !h) throw new SpawnError('width and height must be positive integers');
    if (w > MAX_CANVAS_SIDE || h > MAX_CANVAS_SIDE) throw new SpawnError(`a canvas of ${w}×${h} is larger than this page allows (${MAX_CANVAS_SIDE} pixels a side)`);
    const canvas = document.createElement('canvas');
    canvas.width = w;
    canvas.height = h;
    super(id, 'canvas', canvas, send);
    this.canvas = canvas;
    canvas.setAttribute('role', 'img');
    canvas.setAttribute('aria-label', `Canvas ${id}, ${w} by ${h} pixels`);
    const ctx = canvas.getContext('2d');
    if (!ctx) throw new SpawnError('this browser gives no 2D canvas context');
    /** @type {Ctx2D} */
    this.ctx = ctx;
    /** @type {Map<number, {canvas: OffscreenCanvas | HTMLCanvasElement, ctx: Ctx2D}>} */
    this.buffers = new Map();
    canvas.addEventListener('click', (e) => this.onClick(e));
  }

  /** @param {MouseEvent} e */
  onClick(e) {
    const c = this.canvas;
    const rect = c.getBoundingClientRect();
    if (c.clientWidth === 0 || c.clientHeight === 0) return;
    const fx = ((e.clientX - rect.left - c.clientLeft) * c.width) / c.clientWidth;
    const fy = ((e.clientY - rect.top - c.clientTop) * c.height) / c.clientHeight;
    const x = Math.min(c.width - 1, Math.max(0, Math.floor(fx)));
    const y = Math.min(c.height - 1, Math.max(0, Math.floor(fy)));
    this.emit({ event: 'click', x, y });
  }

  /**
   * @param {unknown} bufferId
   * @returns {Ctx2D}
   */
  target(bufferId) {
    if (bufferId === undefined || bufferId === null || bufferId === 0) return this.ctx;
    const b = typeof bufferId === 'number' ? this.buffers.get(bufferId) : undefined;
    if (!b) throw new Error(`buffer ${str(bufferId)} does not exist`);
    return b.ctx;
  }

  /** @param {string} action @param {Obj} o @param {Obj} payload */
  update(action, o, payload) {
    const bufferId = action === 'drawBuffer' ? o.targetBufferId : o.bufferId;
    try {
      if (!this.draw(action, o)) super.update(action, o, payload);
    } catch (err) {
      const message = `Error processing action "${action}" for buffer ${str(bufferId ?? 0)}: ${/** @type {Error} */ (err).message}`;
      console.warn(`ui: canvas ${JSON.stringify(this.id)}: ${message}`);
      this.send(errorFrame('canvas', this.id, message));
    }
  }

  /**
   * Run one action; false when the action is unknown.
   * @param {string} action
   * @param {Obj} o
   */
  draw(action, o) {
    const n = (/** @type {unknown} */ v) => Number(v);
    switch (action) {
      case 'clear': {
        const ctx = this.target(o.bufferId);
        ctx.clearRect(0, 0, ctx.canvas.width, ctx.canvas.height);
        return true;
      }
      case 'drawLine':
        this.styled(o, (ctx) => {
          ctx.beginPath();
          ctx.moveTo(n(o.x1), n(o.y1));
          ctx.lineTo(n(o.x2), n(o.y2));
          ctx.stroke();
        });
        return true;
      case 'drawRect':
        this.styled(o, (ctx) => {
          if (o.fillColor != null) ctx.fillRect(n(o.x), n(o.y), n(o.width), n(o.height));
          ctx.strokeRect(n(o.x), n(o.y), n(o.width), n(o.height));
        });
        return true;
      case 'drawCircle':
        this.styled(o, (ctx) => {
          ctx.beginPath();
          ctx.arc(n(o.cx), n(o.cy), n(o.radius), 0, Math.PI * 2);
          this.fillStroke(ctx, o);
        });
        return true;
      case 'drawEllipse':
        this.styled(o, (ctx) => {
          ctx.beginPath();
          ctx.ellipse(n(o.cx), n(o.cy), n(o.radiusX), n(o.radiusY), 0, 0, Math.PI * 2);
          this.fillStroke(ctx, o);
        });
        return true;
      case 'drawPolyline':
      case 'drawPolygon': {
        const min = action === 'drawPolygon' ? 3 : 2;
        const pts = Array.isArray(o.points) ? o.points : [];
        if (pts.length < min || !pts.every(isObj)) throw new Error(`${action === 'drawPolygon' ? 'Polygon' : 'Polyline'} requires at least ${min} points`);
        this.styled(o, (ctx) => {
          ctx.beginPath();
          pts.forEach((pt, i) => {
            const p = /** @type {Obj} */ (pt);
            if (i === 0) ctx.moveTo(n(p.x), n(p.y));
            else ctx.lineTo(n(p.x), n(p.y));
          });
          if (action === 'drawPolygon') {
            ctx.closePath();
            this.fillStroke(ctx, o);
          } else {
            ctx.stroke();
          }
        });
        return true;
      }
      case 'drawText':
        this.styled(o, (ctx) => ctx.fillText(str(o.text), n(o.x), n(o.y)));
        return true;
      case 'createBuffer': {
        const id = posInt(o.bufferId);
        if (!id) throw new Error('createBuffer needs a positive integer bufferId');
        const { width, height } = this.canvas;
        /** @type {OffscreenCanvas | HTMLCanvasElement} */
        let canvas;
        if (typeof OffscreenCanvas === 'function') {
          canvas = new OffscreenCanvas(width, height);
        } else {
          canvas = document.createElement('canvas');
          canvas.width = width;
          canvas.height = height;
        }
        const ctx = /** @type {Ctx2D | null} */ (canvas.getContext('2d'));
        if (!ctx) throw new Error('no 2D context for the buffer');
        this.buffers.set(id, { canvas, ctx });
        return true;
      }
      case 'destroyBuffer': {
        const id = posInt(o.bufferId);
        if (!id) throw new Error('destroyBuffer needs a positive integer bufferId');
        if (!this.buffers.delete(id)) console.warn(`ui: canvas ${JSON.stringify(this.id)}: destroyBuffer ${id}: no such buffer`);
        return true;
      }
      case 'drawBuffer': {
        const src = o.sourceBufferId === 0 ? this.canvas : typeof o.sourceBufferId === 'number' ? this.buffers.get(o.sourceBufferId)?.canvas : undefined;
        if (!src) throw new Error(`source buffer ${str(o.sourceBufferId)} does not exist`);
        const dst = this.target(o.targetBufferId ?? 0);
        dst.drawImage(src, 0, 0);
        return true;
      }
      default:
        return false;
    }
  }

  /**
   * Run `fn` on the target buffer with the call's style options applied, then restore.
   * @param {Obj} o
   * @param {(ctx: Ctx2D) => void} fn
   */
  styled(o, fn) {
    const ctx = this.target(o.bufferId);
    ctx.save();
    try {
      if (o.lineColor != null) ctx.strokeStyle = str(o.lineColor);
      if (o.lineWidth != null) ctx.lineWidth = Number(o.lineWidth);
      if (o.fillColor != null) ctx.fillStyle = str(o.fillColor);
      if (o.textSize != null) ctx.font = `${Number(o.textSize)}px sans-serif`;
      if (o.textColor != null) ctx.fillStyle = str(o.textColor);
      fn(ctx);
    } finally {
      ctx.restore();
    }
  }

  /** @param {Ctx2D} ctx @param {Obj} o */
  fillStroke(ctx, o) {
    if (o.fillColor != null) ctx.fill();
    ctx.stroke();
  }

  destroy() {
    this.buffers.clear();
  }
}

class VizBox extends Base {
  /** @param {string} id @param {Obj} _p @param {Send} send */
  constructor(id, _p, send) {
    const viz = new Viz(id);
    super(id, 'viz', viz.el, send);
    this.viz = viz;
  }

  /** @param {string} action @param {Obj} o @param {Obj} payload */
  update(action, o, payload) {
    this.viz.update(action, o, payload);
  }

  destroy() {
    this.viz.destroy();
  }
}

/** Row (horizontal) and column (vertical) flex containers. */
class Container extends Base {
  /** @param {string} id @param {'row' | 'column'} type @param {Send} send */
  constructor(id, type, send) {
    super(id, type, document.createElement('div'), send);
    this.slot = this.el;
  }
}

/** @type {Record<string, (id: string, payload: Obj, send: Send) => Base>} */
const FACTORIES = {
  label: (id, p, send) => new Label(id, p, send),
  markdown: (id, p, send) => new Markdown(id, p, send),
  button: (id, p, send) => new Button(id, p, send),
  textbox: (id, p, send) => new Textbox(id, p, send),
  console: (id, p, send) => new ConsoleBox(id, p, send),
  grid: (id, p, send) => new Grid(id, p, send),
  canvas: (id, p, send) => new CanvasBox(id, p, send),
  viz: (id, p, send) => new VizBox(id, p, send),
  row: (id, _p, send) => new Container(id, 'row', send),
  column: (id, _p, send) => new Container(id, 'column', send),
};

/** The component types this page renders. */
export const COMPONENT_TYPES = Object.freeze(Object.keys(FACTORIES));

/** The component tree under one root element. */
export class Renderer {
  /**
   * @param {HTMLElement} root the element that plays the `root` container
   * @param {Send} send writes a frame to the relay (events, errors)
   */
  constructor(root, send) {
    this.root = root;
    this.send = send;
    /** @type {Map<string, Base>} */
    this.components = new Map();
    /** children waiting for a parent that does not exist (yet), by the parent's id */
    /** @type {Map<string, string[]>} */
    this.orphans = new Map();
  }

  /**
   * Apply one hero frame (anything but announces). Never throws.
   * @param {Obj} msg
   */
  handle(msg) {
    try {
      this.dispatch(msg);
    } catch (err) {
      console.warn('ui: error while applying a frame (ignored):', err, msg);
    }
  }

  /** @param {Obj} msg */
  dispatch(msg) {
    const payload = isObj(msg.payload) ? msg.payload : {};
    const target = msg.target;
    switch (msg.type) {
      case 'clearAll':
        this.clear();
        return;
      case 'spawn':
        this.spawn(str(msg.component), target, payload);
        return;
      case 'update': {
        const comp = typeof target === 'string' ? this.components.get(target) : undefined;
        if (!comp) {
          console.warn(`ui: update for unknown target ${JSON.stringify(target)} ignored`);
          return;
        }
        if (typeof payload.action !== 'string') {
          console.warn(`ui: update for ${JSON.stringify(target)} without an action ignored`, msg);
          return;
        }
        const options = isObj(payload.options) ? payload.options : {};
        if (payload.action === 'changeParent') this.changeParent(comp, options);
        else comp.update(payload.action, options, payload);
        return;
      }
      case 'remove': {
        const comp = typeof target === 'string' ? this.components.get(target) : undefined;
        if (!comp) {
          console.warn(`ui: remove of unknown target ${JSON.stringify(target)} ignored`);
          return;
        }
        this.removeTree(comp);
        return;
      }
      case 'event':
      case 'error':
        return; // another UI's feedback: not for us
      default:
        console.warn(`ui: frame of unknown type ${JSON.stringify(msg.type)} ignored`, msg);
    }
  }

  /** Remove every component: the state `global/clearAll` asks for (also used on reconnect). */
  clear() {
    for (const c of this.components.values()) {
      try {
        c.destroy();
      } catch (err) {
        console.warn('ui: destroy failed', err);
      }
    }
    this.components.clear();
    this.orphans.clear();
    this.root.replaceChildren();
  }

  /**
   * @param {string} type
   * @param {unknown} id
   * @param {Obj} payload
   */
  spawn(type, id, payload) {
    if (typeof id !== 'string' || id === '') {
      console.warn(`ui: ${type} spawn without a target ignored`);
      return;
    }
    if (id === ROOT_ID || this.components.has(id)) {
      console.warn(`ui: spawn of ${type} ${JSON.stringify(id)}: the id is taken; ignored`);
      return;
    }
    const make = Object.hasOwn(FACTORIES, type) ? FACTORIES[type] : undefined;
    if (!make) {
      console.warn(`ui: spawn of unknown component type ${JSON.stringify(type)} (${JSON.stringify(id)}) ignored`);
      return;
    }
    let comp;
    try {
      comp = make(id, payload, this.send);
    } catch (err) {
      const message = /** @type {Error} */ (err).message;
      console.warn(`ui: spawn of ${type} ${JSON.stringify(id)} ignored: ${message}`);
      if (err instanceof SpawnError) this.send(errorFrame(type, id, `Cannot create ${type}: ${message}`));
      return;
    }
    let parent = typeof payload.parent === 'string' && payload.parent !== '' ? payload.parent : ROOT_ID;
    if (parent === id) parent = ROOT_ID;
    this.components.set(id, comp);
    this.place(comp, parent, null);
    const waiting = comp.slot ? this.orphans.get(id) : undefined;
    if (comp.slot && waiting) {
      this.orphans.delete(id);
      for (const childId of waiting) {
        const child = this.components.get(childId);
        if (child && child.parentId === id) comp.slot.append(child.el);
      }
    }
  }

  /** @param {string} id */
  slotOf(id) {
    if (id === ROOT_ID) return this.root;
    return this.components.get(id)?.slot ?? null;
  }

  /**
   * Put `comp` under `parentId` (before `beforeId` when that is a sibling), or keep it as an
   * orphan of `parentId` when that is not a container on the page.
   * @param {Base} comp
   * @param {string} parentId
   * @param {string | null} beforeId
   */
  place(comp, parentId, beforeId) {
    const slot = this.slotOf(parentId);
    comp.parentId = parentId;
    if (slot) {
      const before = beforeId ? this.components.get(beforeId) : undefined;
      if (before && before !== comp && before.el.parentElement === slot) slot.insertBefore(comp.el, before.el);
      else slot.append(comp.el);
    } else {
      comp.el.remove();
      const list = this.orphans.get(parentId) ?? [];
      list.push(comp.id);
      this.orphans.set(parentId, list);
      console.warn(`ui: ${comp.type} ${JSON.stringify(comp.id)} has no container ${JSON.stringify(parentId)} to go in; kept hidden until one appears`);
    }
  }

  /** @param {Base} comp */
  detach(comp) {
    comp.el.remove();
    const list = this.orphans.get(comp.parentId);
    if (list) {
      const k = list.indexOf(comp.id);
      if (k >= 0) list.splice(k, 1);
      if (list.length === 0) this.orphans.delete(comp.parentId);
    }
  }

  /**
   * True when `id` is `ancestor` or lies inside it.
   * @param {string} id
   * @param {string} ancestor
   */
  isWithin(id, ancestor) {
    let cur = id;
    for (let steps = 0; steps <= this.components.size; steps++) {
      if (cur === ancestor) return true;
      const c = this.components.get(cur);
      if (!c) return false;
      cur = c.parentId;
    }
    return true; // a cycle: treat as inside
  }

  /**
   * `update {action: "changeParent", options: {parent, insertBefore?}}`.
   * @param {Base} comp
   * @param {Obj} options
   */
  changeParent(comp, options) {
    const parent = options.parent;
    if (typeof parent !== 'string' || parent === '') {
      console.warn(`ui: changeParent of ${JSON.stringify(comp.id)} without a parent ignored`);
      return;
    }
    if (parent !== ROOT_ID) {
      const p = this.components.get(parent);
      if (!p && !this.orphans.has(parent)) {
        console.warn(`ui: changeParent of ${JSON.stringify(comp.id)} to unknown ${JSON.stringify(parent)} ignored`);
        return;
      }
      if (p && !p.slot) {
        console.warn(`ui: changeParent of ${JSON.stringify(comp.id)} to ${p.type} ${JSON.stringify(parent)}, not a container; ignored`);
        return;
      }
      if (this.isWithin(parent, comp.id)) {
        console.warn(`ui: changeParent of ${JSON.stringify(comp.id)} into itself or its own child ignored`);
        return;
      }
    }
    const before = typeof options.insertBefore === 'string' ? options.insertBefore : null;
    if (parent === comp.parentId && before === null) return;
    this.detach(comp);
    this.place(comp, parent, before);
  }

  /**
   * Remove `comp` and everything inside it (including orphans waiting for it).
   * @param {Base} comp
   */
  removeTree(comp) {
    /** @type {Base[]} */
    const all = [];
    /** @type {Base[]} */
    const queue = [comp];
    while (queue.length) {
      const c = /** @type {Base} */ (queue.shift());
      all.push(c);
      if (c.slot) {
        for (const el of c.slot.children) {
          const child = this.components.get(/** @type {HTMLElement} */ (el).dataset.skId ?? '');
          if (child && child.el === el) queue.push(child);
        }
      }
      for (const childId of this.orphans.get(c.id) ?? []) {
        const child = this.components.get(childId);
        if (child) queue.push(child);
      }
      this.orphans.delete(c.id);
    }
    this.detach(comp);
    for (const c of all) {
      try {
        c.destroy();
      } catch (err) {
        console.warn('ui: destroy failed', err);
      }
      this.components.delete(c.id);
    }
  }
}
