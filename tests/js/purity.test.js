import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

const PURE = [
  'config', 'validation', 'links', 'colours', 'days', 'backoff', 'storage', 'state',
  'private', 'moderation', 'editing', 'jump', 'uploads', 'members', 'reactions',
  'presence_lines', 'dm', 'reads',
];
const source = (name) => readFileSync(new URL(`../../static/js/${name}.js`, import.meta.url), 'utf8');
// Code only: comments may mention the page.
const code = (text) => text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');

test('the pure modules touch neither the DOM nor jQuery', () => {
  for (const name of PURE) {
    const text = code(source(name));
    for (const word of ['window', 'document', 'jQuery', 'navigator', 'localStorage', 'WebSocket']) {
      assert.ok(!new RegExp(`\\b${word}\\b`).test(text), `${name}.js uses ${word}`);
    }
    assert.ok(!/\$\(/.test(text), `${name}.js uses $(`);
  }
});

test('the pure modules import only each other', () => {
  for (const name of PURE) {
    for (const [, target] of code(source(name)).matchAll(/\bfrom\s+'([^']+)'/g)) {
      const imported = target.replace(/^\.\/|\.js$/g, '');
      assert.ok(PURE.includes(imported), `${name}.js imports ${target}`);
    }
  }
});
