// @ts-check
/**
 * ui-markdown.js: a small, safe Markdown renderer for the `markdown` component of /ui.
 *
 * It builds DOM nodes directly (createElement + text nodes, never innerHTML), so nothing in the
 * text can become markup: raw HTML shows as the literal text it is. Link targets are kept only
 * for http:, https:, mailto: and relative URLs (image sources: http:, https: and relative);
 * anything else (javascript:, data:, vbscript:, …) is dropped and the link text stays as text.
 *
 * Supported (a CommonMark subset, like react-markdown without plugins, plus ~~strikethrough~~):
 * ATX and setext headings, paragraphs, hard breaks (two trailing spaces or a backslash),
 * emphasis and strong emphasis with * and _, inline code, fenced code blocks (```lang gives
 * `<code class="language-lang">`) and indented code, block quotes, bullet and ordered lists
 * (nested by indentation), thematic breaks, links `[text](url "title")`, autolinks `<url>`,
 * images `![alt](src)`, backslash escapes and the common character references.
 */

/** Longer text is shown as plain text: the inline parser is not linear on hostile input. */
export const MAX_MARKDOWN = 200_000;
/** How far a link label or an emphasis may reach (keeps unmatched `[`, `*`, `_` linear). */
const MAX_SPAN = 2000;

/** Characters a backslash can escape (CommonMark: ASCII punctuation). */
const ESCAPABLE = '!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~';

const ENTITIES = /** @type {Record<string, string>} */ ({
  amp: '&',
  lt: '<',
  gt: '>',
  quot: '"',
  apos: "'",
  nbsp: '\u00a0',
  copy: '©',
  reg: '®',
  hellip: '…',
  mdash: '—',
  ndash: '–',
});

/**
 * Decode `&name;`, `&#123;` and `&#x1F;` references (a small table of names).
 * @param {string} s
 */
function decodeEntities(s) {
  return s.replace(/&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z]{2,8});/g, (m, body) => {
    if (body[0] === '#') {
      const code = body[1] === 'x' || body[1] === 'X' ? parseInt(body.slice(2), 16) : parseInt(body.slice(1), 10);
      if (!Number.isFinite(code) || code === 0 || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return '\ufffd';
      return String.fromCodePoint(code);
    }
    return ENTITIES[body] ?? m;
  });
}

/**
 * The URL to use for a link or image, or `null` when its scheme is not allowed.
 * ASCII control characters and whitespace are removed first, as browsers do while parsing a URL
 * (so `java\tscript:` cannot slip through).
 * @param {string} raw
 * @param {'link' | 'image'} kind
 * @returns {string | null}
 */
export function safeUrl(raw, kind = 'link') {
  const url = raw.replace(/[\u0000-\u0020\u007f]+/g, '');
  if (url === '') return null;
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(url);
  if (!m) return url; // relative (no scheme)
  const scheme = m[1].toLowerCase();
  const allowed = kind === 'image' ? ['http', 'https'] : ['http', 'https', 'mailto'];
  return allowed.includes(scheme) ? url : null;
}

// --- blocks --------------------------------------------------------------------------------

const FENCE_RE = /^( {0,3})(`{3,}|~{3,})[ \t]*([^`]*?)[ \t]*$/;
const ATX_RE = /^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$/;
const HR_RE = /^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$/;
const QUOTE_RE = /^ {0,3}> ?(.*)$/;
const LIST_RE = /^( {0,3})([-*+]|\d{1,9}[.)])([ \t]+|$)(.*)$/;
const SETEXT_RE = /^ {0,3}(=+|-+)[ \t]*$/;
const BLANK_RE = /^[ \t]*$/;

/**
 * Render `text` into a fragment of safe DOM nodes.
 * @param {string} text
 * @returns {DocumentFragment}
 */
export function renderMarkdown(text) {
  const frag = document.createDocumentFragment();
  if (text.length > MAX_MARKDOWN) {
    console.warn(`ui: markdown of ${text.length} characters shown as plain text (limit ${MAX_MARKDOWN})`);
    frag.append(h('pre', [text]));
    return frag;
  }
  const lines = String(text).replace(/\r\n?/g, '\n').replace(/\t/g, '    ').split('\n');
  for (const node of parseBlocks(lines, 0)) frag.append(node);
  return frag;
}

/**
 * @param {string} tag
 * @param {(Node | string)[]} [children]
 */
function h(tag, children = []) {
  const el = document.createElement(tag);
  el.append(...children);
  return el;
}

/**
 * Parse block structure.
 * @param {string[]} lines
 * @param {number} depth nesting depth (bounded to keep deep input from exhausting the stack)
 * @returns {Node[]}
 */
function parseBlocks(lines, depth) {
  /** @type {Node[]} */
  const out = [];
  if (depth > 16) {
    out.push(h('p', [lines.join('\n')]));
    return out;
  }
  let i = 0;
  /** @type {string[]} */
  let para = [];
  const flush = () => {
    if (para.length) out.push(h('p', parseInline(para.join('\n').trim(), 0)));
    para = [];
  };
  while (i < lines.length) {
    const line = lines[i];
    if (BLANK_RE.test(line)) {
      flush();
      i++;
      continue;
    }
    // setext heading: a paragraph line followed by === or ---
    const setext = SETEXT_RE.exec(line);
    if (setext && para.length) {
      const level = setext[1][0] === '=' ? 'h1' : 'h2';
      out.push(h(level, parseInline(para.join('\n').trim(), 0)));
      para = [];
      i++;
      continue;
    }
    const fence = FENCE_RE.exec(line);
    if (fence) {
      flush();
      const [, indent, marker, info] = fence;
      const body = [];
      i++;
      while (i < lines.length) {
        const close = /^ {0,3}(`{3,}|~{3,})[ \t]*$/.exec(lines[i]);
        if (close && close[1][0] === marker[0] && close[1].length >= marker.length) {
          i++;
          break;
        }
        body.push(lines[i].startsWith(indent) ? lines[i].slice(indent.length) : lines[i].trimStart());
        i++;
      }
      out.push(codeBlock(body.join('\n'), decodeEntities(info.split(/\s+/)[0] ?? '')));
      continue;
    }
    if (/^ {4}/.test(line) && !para.length) {
      const body = [];
      while (i < lines.length && (/^ {4}/.test(lines[i]) || BLANK_RE.test(lines[i]))) {
        body.push(lines[i].slice(4));
        i++;
      }
      while (body.length && BLANK_RE.test(body[body.length - 1])) body.pop();
      out.push(codeBlock(body.join('\n'), ''));
      continue;
    }
    const atx = ATX_RE.exec(line);
    if (atx) {
      flush();
      out.push(h(`h${atx[1].length}`, parseInline((atx[2] ?? '').trim(), 0)));
      i++;
      continue;
    }
    if (HR_RE.test(line)) {
      flush();
      out.push(h('hr'));
      i++;
      continue;
    }
    if (QUOTE_RE.test(line)) {
      flush();
      const body = [];
      while (i < lines.length && !BLANK_RE.test(lines[i])) {
        const q = QUOTE_RE.exec(lines[i]);
        body.push(q ? q[1] : lines[i]); // lazy continuation
        i++;
      }
      out.push(h('blockquote', parseBlocks(body, depth + 1)));
      continue;
    }
    const item = LIST_RE.exec(line);
    if (item && (!para.length || item[4].trim() !== '')) {
      flush();
      i = parseList(lines, i, out, depth);
      continue;
    }
    para.push(line);
    i++;
  }
  flush();
  return out;
}

/**
 * @param {string} code
 * @param {string} lang
 */
function codeBlock(code, lang) {
  const c = h('code', [code]);
  if (lang && /^[A-Za-z0-9_+#.-]{1,32}$/.test(lang)) c.className = `language-${lang}`;
  return h('pre', [c]);
}

/**
 * Parse one list starting at `lines[start]`; push it to `out` and return the next line index.
 * @param {string[]} lines
 * @param {number} start
 * @param {Node[]} out
 * @param {number} depth
 */
function parseList(lines, start, out, depth) {
  const first = /** @type {RegExpExecArray} */ (LIST_RE.exec(lines[start]));
  const ordered = /\d/.test(first[2]);
  const delim = first[2].slice(-1);
  const list = h(ordered ? 'ol' : 'ul');
  if (ordered) {
    const n = parseInt(first[2], 10);
    if (n !== 1) list.setAttribute('start', String(n));
  }
  /** @type {string[][]} */
  const items = [];
  let loose = false;
  let i = start;
  while (i < lines.length) {
    const m = LIST_RE.exec(lines[i]);
    if (!m || /\d/.test(m[2]) !== ordered || m[2].slice(-1) !== delim) break;
    const contentIndent = m[1].length + m[2].length + (m[3].length > 4 || m[3].length === 0 ? 1 : m[3].length);
    const body = [m[4]];
    i++;
    let sawBlank = false;
    while (i < lines.length) {
      const l = lines[i];
      if (BLANK_RE.test(l)) {
        body.push('');
        sawBlank = true;
        i++;
        continue;
      }
      const indent = /** @type {RegExpExecArray} */ (/^ */.exec(l))[0].length;
      if (indent >= contentIndent) {
        body.push(l.slice(contentIndent));
      } else if (!sawBlank && !LIST_RE.test(l) && !HR_RE.test(l) && !ATX_RE.test(l) && !FENCE_RE.test(l) && !QUOTE_RE.test(l)) {
        body.push(l.trimStart()); // lazy paragraph continuation
      } else {
        break;
      }
      sawBlank = false;
      i++;
    }
    // trailing blank lines belong between items (loose list) or end the list
    while (body.length > 1 && body[body.length - 1] === '') {
      body.pop();
      const next = i < lines.length ? LIST_RE.exec(lines[i]) : null;
      if (next && /\d/.test(next[2]) === ordered && next[2].slice(-1) === delim) loose = true;
    }
    if (body.slice(0, -1).some((l, k) => l === '' && body[k + 1] !== '')) loose = true;
    items.push(body);
  }
  for (const body of items) {
    const blocks = parseBlocks(body, depth + 1);
    const li = h('li');
    for (const b of blocks) {
      if (!loose && b instanceof HTMLParagraphElement) li.append(...b.childNodes);
      else li.append(b);
    }
    list.append(li);
  }
  out.push(list);
  return i;
}

// --- inlines -------------------------------------------------------------------------------

/**
 * Parse inline markup into nodes.
 * @param {string} s
 * @param {number} depth
 * @returns {Node[]}
 */
function parseInline(s, depth) {
  /** @type {Node[]} */
  const out = [];
  let textBuf = '';
  const pushText = () => {
    if (textBuf) out.push(document.createTextNode(decodeEntities(textBuf)));
    textBuf = '';
  };
  if (depth > 16) return [document.createTextNode(s)];
  /** backtick run length → a position from which no closing run of that length exists */
  /** @type {Map<number, number>} */
  const noCloser = new Map();
  /** @type {Map<string, number[]>} */
  const runs = new Map();
  let i = 0;
  while (i < s.length) {
    const c = s[i];
    // backslash escape or hard break
    if (c === '\\') {
      if (s[i + 1] === '\n') {
        pushText();
        out.push(h('br'));
        i += 2;
        continue;
      }
      if (i + 1 < s.length && ESCAPABLE.includes(s[i + 1])) {
        pushText();
        out.push(document.createTextNode(s[i + 1]));
        i += 2;
        continue;
      }
    }
    // newline: hard break after two spaces, soft break otherwise
    if (c === '\n') {
      const hard = textBuf.endsWith('  ');
      let end = textBuf.length;
      while (end > 0 && textBuf[end - 1] === ' ') end--;
      if (end < textBuf.length) textBuf = textBuf.slice(0, end);
      if (hard) {
        pushText();
        out.push(h('br'));
      } else {
        textBuf += '\n';
      }
      i++;
      while (s[i] === ' ') i++;
      continue;
    }
    // code span
    if (c === '`') {
      let e = i;
      while (s[e] === '`') e++;
      const run = s.slice(i, e);
      const known = noCloser.get(run.length);
      const close = known !== undefined && e >= known ? -1 : findBacktickRun(s, e, run.length);
      if (close < 0 && (known === undefined || e < known)) noCloser.set(run.length, e);
      if (close >= 0) {
        pushText();
        let code = s.slice(i + run.length, close).replace(/\n/g, ' ');
        if (/^ .*[^ ].* $/.test(code)) code = code.slice(1, -1);
        out.push(h('code', [code]));
        i = close + run.length;
        continue;
      }
      textBuf += run;
      i += run.length;
      continue;
    }
    // autolink <scheme:...> or <user@host>
    if (c === '<') {
      const m = /^<([A-Za-z][A-Za-z0-9+.-]{1,31}:[^\s<>]*)>/.exec(s.slice(i)) ?? /^<([^\s<>@]+@[^\s<>@]+\.[^\s<>@]+)>/.exec(s.slice(i));
      if (m) {
        const target = m[1].includes(':') ? m[1] : `mailto:${m[1]}`;
        const url = safeUrl(target);
        pushText();
        out.push(url ? link(url, [document.createTextNode(m[1])], '') : document.createTextNode(m[0]));
        i += m[0].length;
        continue;
      }
    }
    // image or link
    if (c === '[' || (c === '!' && s[i + 1] === '[')) {
      const isImage = c === '!';
      const parsed = parseLinkAt(s, isImage ? i + 1 : i);
      if (parsed) {
        pushText();
        if (isImage) {
          const src = safeUrl(parsed.dest, 'image');
          if (src) {
            const img = document.createElement('img');
            img.src = src;
            img.alt = decodeEntities(parsed.label);
            if (parsed.title) img.title = parsed.title;
            img.loading = 'lazy';
            img.referrerPolicy = 'no-referrer';
            out.push(img);
          } else {
            out.push(document.createTextNode(decodeEntities(parsed.label)));
          }
        } else {
          const url = safeUrl(parsed.dest);
          const inner = parseInline(parsed.label, depth + 1);
          if (url) out.push(link(url, inner, parsed.title));
          else out.push(...inner);
        }
        i = parsed.end;
        continue;
      }
    }
    // emphasis, strong, strikethrough
    if (c === '*' || c === '_' || (c === '~' && s[i + 1] === '~')) {
      const em = parseEmphasisAt(s, i, depth, runs);
      if (em) {
        pushText();
        out.push(em.node);
        i = em.end;
        continue;
      }
    }
    textBuf += c;
    i++;
  }
  pushText();
  return out;
}

/**
 * @param {string} s
 * @param {number} from
 * @param {number} len
 */
function findBacktickRun(s, from, len) {
  let j = from;
  while (j < s.length) {
    const k = s.indexOf('`', j);
    if (k < 0) return -1;
    let e = k;
    while (s[e] === '`') e++;
    if (e - k === len) return k;
    j = e;
  }
  return -1;
}

/**
 * @param {string} url
 * @param {Node[]} children
 * @param {string} title
 */
function link(url, children, title) {
  const a = document.createElement('a');
  a.href = url;
  a.rel = 'noopener noreferrer nofollow';
  if (!url.startsWith('#')) a.target = '_blank';
  if (title) a.title = title;
  a.append(...children);
  return a;
}

/**
 * `[label](dest "title")` starting at `s[i] === '['`.
 * @param {string} s
 * @param {number} i
 * @returns {{label: string, dest: string, title: string, end: number} | null}
 */
function parseLinkAt(s, i) {
  let depth = 0;
  let j = i;
  const stop = Math.min(s.length, i + MAX_SPAN);
  for (; j < stop; j++) {
    const ch = s[j];
    if (ch === '\\') {
      j++;
      continue;
    }
    if (ch === '`') {
      const run = /** @type {RegExpExecArray} */ (/^`+/.exec(s.slice(j)))[0];
      const close = findBacktickRun(s, j + run.length, run.length);
      if (close >= 0) j = close + run.length - 1;
      continue;
    }
    if (ch === '[') depth++;
    else if (ch === ']') {
      depth--;
      if (depth === 0) break;
    }
  }
  if (j >= stop || s[j] !== ']' || s[j + 1] !== '(') return null;
  const label = s.slice(i + 1, j);
  const rest = s.slice(j + 2);
  const m = /^[ \t\n]*(?:<([^<>\n]*)>|((?:[^\s()\\]|\\.|\((?:[^\s()\\]|\\.)*\))*))(?:[ \t\n]+("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|\((?:[^()\\]|\\.)*\)))?[ \t\n]*\)/.exec(rest);
  if (!m) return null;
  const unescape = (/** @type {string} */ x) => x.replace(/\\([!-/:-@[-`{-~])/g, '$1');
  const dest = decodeEntities(unescape(m[1] ?? m[2] ?? ''));
  const title = m[3] ? decodeEntities(unescape(m[3].slice(1, -1))) : '';
  return { label, dest, title, end: j + 2 + m[0].length };
}

/**
 * Where a closing run of exactly `run` × `ch` may end an emphasis in `s`: maximal runs that are
 * right-flanking (preceded by non-space) and, for `_`, not followed by a letter or digit.
 * @param {string} s
 * @param {string} ch
 * @param {number} run
 * @returns {number[]} start positions, ascending
 */
function closingRuns(s, ch, run) {
  /** @type {number[]} */
  const out = [];
  let k = s.indexOf(ch);
  while (k >= 0) {
    let e = k;
    while (s[e] === ch) e++;
    const before = s[k - 1];
    if (e - k === run && before !== undefined && !/\s/.test(before) && (ch !== '_' || !/[\p{L}\p{N}]/u.test(s[e] ?? ''))) out.push(k);
    k = s.indexOf(ch, e);
  }
  return out;
}

/**
 * `*em*`, `_em_`, `**strong**`, `__strong__`, `***both***`, `~~del~~` starting at `s[i]`.
 * @param {string} s
 * @param {number} i
 * @param {number} depth
 * @param {Map<string, number[]>} runs cache of closingRuns for `s`
 * @returns {{node: Node, end: number} | null}
 */
function parseEmphasisAt(s, i, depth, runs) {
  const ch = s[i];
  let run = 0;
  while (s[i + run] === ch) run++;
  if (ch === '~') {
    if (run !== 2) return null;
  } else if (run > 3) {
    return null;
  }
  const after = s[i + run] ?? '';
  if (after === '' || /\s/.test(after)) return null; // not left-flanking
  if (ch === '_' && i > 0 && /[\p{L}\p{N}]/u.test(s[i - 1])) return null; // intraword _ is literal
  const key = ch + run;
  let list = runs.get(key);
  if (!list) {
    list = closingRuns(s, ch, run);
    runs.set(key, list);
  }
  // the first closing run after a non-empty content
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (list[mid] > i + run) hi = mid;
    else lo = mid + 1;
  }
  if (lo >= list.length) return null;
  const k = list[lo];
  const kids = parseInline(s.slice(i + run, k), depth + 1);
  /** @type {Node} */
  let node;
  if (ch === '~') node = h('del', kids);
  else if (run === 1) node = h('em', kids);
  else if (run === 2) node = h('strong', kids);
  else node = h('em', [h('strong', kids)]);
  return { node, end: k + run };
}
