import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  contrast,
  initial,
  inkFor,
  readableColor,
  rgb,
  safeColor,
  toHex,
} from '../../static/js/colours.js';

const WHITE = [255, 255, 255];
const BLACK = [0, 0, 0];
const DARK = [0x1e, 0x1e, 0x1e];

test('only #rrggbb colours are used', () => {
  assert.equal(safeColor('#a1B2c3'), '#a1B2c3');
  for (const bad of ['red', '#abc', 'url(x)', '#1234567', '', null, undefined, 'expression(1)']) {
    assert.equal(safeColor(bad), '', String(bad));
  }
  assert.equal(readableColor('javascript:x', [WHITE], BLACK), '');
});

test('hex round trip', () => {
  assert.deepEqual(rgb('#0a80ff'), [10, 128, 255]);
  assert.equal(toHex([10, 128, 255]), '#0a80ff');
});

test('contrast: the WCAG extremes', () => {
  assert.equal(Math.round(contrast(WHITE, BLACK)), 21);
  assert.equal(contrast(WHITE, WHITE), 1);
  assert.equal(contrast(WHITE, BLACK), contrast(BLACK, WHITE));
});

test('a faint colour is darkened until it reads at 4.5:1, hue kept', () => {
  const faint = '#7cb342'; // 2.5:1 on white
  assert.ok(contrast(rgb(faint), WHITE) < 4.5);
  const out = readableColor(faint, [WHITE], BLACK);
  assert.ok(contrast(rgb(out), WHITE) >= 4.5, out);
  const [r, g, b] = rgb(out);
  assert.ok(g > r && g > b, 'still green');
});

test('a colour that already reads is kept as it is', () => {
  assert.equal(readableColor('#1f5f2f', [WHITE], BLACK), '#1f5f2f');
});

test('on a dark theme colours are lightened', () => {
  const out = readableColor('#2a3f9f', [DARK], WHITE);
  assert.ok(contrast(rgb(out), DARK) >= 4.5, out);
  assert.ok(rgb(out)[2] > 0x9f);
});

test('every background counts', () => {
  const backgrounds = [WHITE, [0xff, 0xf3, 0xc4]];
  const out = readableColor('#d7448e', backgrounds, BLACK);
  for (const bg of backgrounds) assert.ok(contrast(rgb(out), bg) >= 4.5);
});

test('avatar ink: white unless the colour is too light', () => {
  assert.equal(inkFor('#1f5f2f'), '#ffffff');
  assert.equal(inkFor('#ffee88'), '#111111');
  assert.equal(inkFor('nonsense'), '#ffffff');
});

test('initials: first code point, capitalised', () => {
  assert.equal(initial('bob'), 'B');
  assert.equal(initial('𝒜lice'), '𝒜');
  assert.equal(initial(''), '?');
  assert.equal(initial(undefined), '?');
});
