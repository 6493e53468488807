/**
 * Name colours kept readable: the server's palette nudged toward the text
 * colour until it reaches a contrast of 4.5:1 on every given background, and
 * the ink for initials on a coloured avatar. Pure: colours in, colours out.
 */

const MIN_CONTRAST = 4.5;
const WHITE = [255, 255, 255];

/** The colour if it is "#rrggbb", else ''. */
export function safeColor(color) {
  return /^#[0-9a-f]{6}$/i.test(color || '') ? color : '';
}

export function rgb(hex) {
  const n = parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

export function toHex(c) {
  return `#${c.map((v) => v.toString(16).padStart(2, '0')).join('')}`;
}

/** WCAG relative luminance of an [r, g, b] colour. */
export function luminance(c) {
  const [r, g, b] = c.map((v) => {
    const x = v / 255;
    return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

/** WCAG contrast ratio of two [r, g, b] colours, from 1 to 21. */
export function contrast(a, b) {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
}

/**
 * `color` moved toward `toward` ([r, g, b]) in 5 % steps until it reads at
 * 4.5:1 on every background ([r, g, b] each); '' for an invalid colour.
 */
export function readableColor(color, backgrounds, toward) {
  const hex = safeColor(color);
  if (!hex) return '';
  const base = rgb(hex);
  let c = base;
  for (let t = 0.05; t <= 1 && backgrounds.some((bg) => contrast(c, bg) < MIN_CONTRAST); t += 0.05) {
    c = base.map((v, i) => Math.round(v + (toward[i] - v) * t));
  }
  return toHex(c);
}

/** White initials on an avatar of this colour, unless it is too light for them. */
export function inkFor(color) {
  const hex = safeColor(color);
  return hex && contrast(rgb(hex), WHITE) < 3 ? '#111111' : '#ffffff';
}

/** The first character of a name, in capitals, for an avatar. */
export function initial(name) {
  return (Array.from(name || '?')[0] || '?').toUpperCase();
}
