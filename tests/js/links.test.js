import assert from 'node:assert/strict';
import { test } from 'node:test';

import { mentionPattern, safeHref, splitLinks, tokenize, trimLink } from '../../static/js/links.js';

const links = (text) => splitLinks(text).filter((p) => p.href);

test('plain text is one token', () => {
  assert.deepEqual(splitLinks('hello there'), [{ text: 'hello there' }]);
  assert.deepEqual(splitLinks(''), []);
});

test('an http link between words', () => {
  assert.deepEqual(splitLinks('see http://example.com now'), [
    { text: 'see ' },
    { text: 'http://example.com', href: 'http://example.com/' },
    { text: ' now' },
  ]);
});

test('javascript:, data: and other schemes never become links', () => {
  for (const text of [
    'javascript:alert(1)',
    'JaVaScRiPt:alert(1)',
    'data:text/html,<b>x</b>',
    'vbscript:msgbox',
    'ftp://example.com/file',
    'file:///etc/passwd',
  ]) {
    assert.deepEqual(links(text), [], text);
  }
  assert.equal(safeHref('javascript:alert(1)'), null);
  assert.equal(safeHref('https://ok.example/'), 'https://ok.example/');
});

test('a link hidden after javascript: is only its http part', () => {
  const [link] = links('javascript:void(0);//https://evil.example/x');
  assert.equal(link.href, 'https://evil.example/x');
});

test('no link glued to a word before it', () => {
  assert.deepEqual(links('xhttp://example.com'), []);
});

test('trailing sentence punctuation stays outside the link', () => {
  for (const [text, url] of [
    ['go to https://example.com.', 'https://example.com'],
    ['https://example.com/a?b=1, then', 'https://example.com/a?b=1'],
    ['really https://example.com/x!?', 'https://example.com/x'],
    ['"https://example.com/q"', 'https://example.com/q'],
    ['(see https://example.com/page)', 'https://example.com/page'],
    ['[https://example.com/a]', 'https://example.com/a'],
  ]) {
    assert.equal(links(text)[0].text, url, text);
  }
});

test('a closing bracket that opens in the URL belongs to it', () => {
  const url = 'https://en.wikipedia.org/wiki/Wheezy_(software)';
  assert.equal(links(`${url}.`)[0].text, url);
  assert.equal(links(`(${url})`)[0].text, url);
  assert.equal(trimLink('https://x.example/a_(b)).'), 'https://x.example/a_(b)');
});

test('IDN hosts: the text as written, the href in punycode', () => {
  const [link] = links('shop at https://bücher.example/straße today');
  assert.equal(link.text, 'https://bücher.example/straße');
  assert.equal(link.href, 'https://xn--bcher-kva.example/stra%C3%9Fe');
});

test('hrefs are normalised by URL, not by the text', () => {
  const [link] = links('http://EXAMPLE.com/a b');
  assert.equal(link.href, 'http://example.com/a');
  assert.deepEqual(links('https://'), []); // not a URL
});

test('several links and the text between them', () => {
  const parts = splitLinks('a https://a.example b http://b.example');
  assert.deepEqual(
    parts.map((p) => Boolean(p.href)),
    [false, true, false, true],
  );
  assert.equal(parts.map((p) => p.text).join(''), 'a https://a.example b http://b.example');
});

test('mentions of my name, as a whole word only', () => {
  const me = mentionPattern('alice');
  const marked = (text) => tokenize(text, me).filter((t) => t.mention).map((t) => t.text);
  assert.deepEqual(marked('hi @alice!'), ['@alice']);
  assert.deepEqual(marked('hi @ALICE.'), ['@ALICE']);
  assert.deepEqual(marked('bob@alice.example'), []);
  assert.deepEqual(marked('write to bob@alice now'), []);
  assert.deepEqual(marked('@@alice'), []);
  assert.deepEqual(marked('@alice-bob and @alice.b'), []);
  assert.deepEqual(marked('@alice_x'), []);
  assert.deepEqual(marked('@alice @alice'), ['@alice', '@alice']);
});

test('names with regexp characters match literally', () => {
  const me = mentionPattern("o'neil.j");
  assert.equal(tokenize("hey @o'neil.j", me)[1].text, "@o'neil.j");
  assert.equal(tokenize('hey @o_neilxj', me).length, 1);
});

test('links are never searched for mentions; no name, no mentions', () => {
  const me = mentionPattern('alice');
  const tokens = tokenize('https://x.example/@alice', me);
  assert.equal(tokens.length, 1);
  assert.ok(tokens[0].href);
  assert.equal(mentionPattern(''), null);
  assert.deepEqual(tokenize('@alice', null), [{ text: '@alice' }]);
});

test('the tokens put back together are the text', () => {
  const text = 'x @alice, see https://a.example/(b)) and <script>alert(1)</script>';
  const tokens = tokenize(text, mentionPattern('alice'));
  assert.equal(tokens.map((t) => t.text).join(''), text);
});
