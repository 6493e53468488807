/**
 * A message's text as a list of tokens: plain runs, http(s) links and
 * mentions of me. The DOM is built from the tokens elsewhere, node by node;
 * nothing here is ever parsed as HTML. Pure: no DOM, no jQuery.
 */

// A candidate link: http(s)://, then anything up to white space or a
// character that cannot be in a URL as written in a sentence.
const LINK_RE = /(^|[^\p{L}\p{N}_])(https?:\/\/[^\s<>"'`]+)/giu;
const TRAILING_RE = /[.,;:!?'"*_~]+$/;
const BRACKETS = [
  ['(', ')'],
  ['[', ']'],
];

/** The URL without the punctuation of the sentence it ends. */
export function trimLink(url) {
  let out = url;
  for (;;) {
    const before = out;
    out = out.replace(TRAILING_RE, '');
    // A closing bracket belongs to the URL only if it opens one, as in
    // https://en.wikipedia.org/wiki/Wheezy_(software).
    for (const [open, close] of BRACKETS) {
      if (out.endsWith(close) && out.split(close).length > out.split(open).length) {
        out = out.slice(0, -1);
      }
    }
    if (out === before) return out;
  }
}

/** A safe href for the text of a link, or null: only http and https. */
export function safeHref(text) {
  let url;
  try {
    url = new URL(text);
  } catch (e) {
    return null;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return null;
  return url.href;
}

/** Runs of text and links: [{text}, {text, href}], in order. */
export function splitLinks(text) {
  const parts = [];
  let last = 0;
  const re = new RegExp(LINK_RE.source, LINK_RE.flags);
  let match;
  while ((match = re.exec(text)) !== null) {
    const start = match.index + match[1].length;
    const url = trimLink(match[2]);
    const href = safeHref(url);
    if (!href) continue;
    if (start > last) parts.push({ text: text.slice(last, start) });
    parts.push({ text: url, href });
    last = start + url.length;
    re.lastIndex = last;
  }
  if (last < text.length) parts.push({ text: text.slice(last) });
  return parts;
}

/** A regexp finding "@name" as a whole word, or null for no name. */
export function mentionPattern(name) {
  if (!name) return null;
  // Only syntax characters may be escaped in a unicode regexp.
  const escaped = name.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  // Not inside an address (bob@name) and not the start of a longer name
  // (@alice-bob, @alice.b); sentence punctuation after it is fine.
  return new RegExp(
    `(?<![\\p{L}\\p{N}\\p{M}_@-])@${escaped}(?![\\p{L}\\p{N}\\p{M}_]|[-.'][\\p{L}\\p{N}])`,
    'giu',
  );
}

/**
 * The tokens of a message: {text}, {text, href} for a link and
 * {text, mention: true} for a mention matched by `mention` (a pattern from
 * mentionPattern, or null). Links are never searched for mentions.
 */
export function tokenize(text, mention) {
  const tokens = [];
  for (const part of splitLinks(String(text))) {
    if (part.href || !mention) {
      tokens.push(part);
      continue;
    }
    const re = new RegExp(mention.source, mention.flags);
    let last = 0;
    let match;
    while ((match = re.exec(part.text)) !== null) {
      if (match.index > last) tokens.push({ text: part.text.slice(last, match.index) });
      tokens.push({ text: match[0], mention: true });
      last = match.index + match[0].length;
    }
    if (last < part.text.length) tokens.push({ text: part.text.slice(last) });
  }
  return tokens;
}
