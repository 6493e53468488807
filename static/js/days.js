/**
 * Local calendar days: which day a message belongs to, what its separator
 * says ("Today", "Yesterday", a date), and whether two messages of one author
 * form one block. The clock comes in as an argument. Pure: no DOM.
 */

export const GROUP_WITHIN_MS = 5 * 60 * 1000;

/** The local calendar day of a time (ms or Date), as "YYYY-M-D". */
export function dayKey(ts) {
  const d = new Date(ts);
  return `${d.getFullYear()}-${d.getMonth() + 1}-${d.getDate()}`;
}

/** The separator's label for a day key, seen at `now` (ms or Date). */
export function dayLabel(key, now, locale = undefined) {
  const today = new Date(now);
  if (key === dayKey(today)) return 'Today';
  const yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
  if (key === dayKey(yesterday)) return 'Yesterday';
  const [y, m, d] = key.split('-').map(Number);
  const options = { weekday: 'long', month: 'long', day: 'numeric' };
  if (y !== today.getFullYear()) options.year = 'numeric';
  return new Date(y, m - 1, d).toLocaleDateString(locale, options);
}

/** Whether `next` continues `prev`'s block: same author, within five minutes. */
export function continuesBlock(prev, next) {
  return Boolean(
    prev &&
      next &&
      prev.userId === next.userId &&
      prev.author === next.author &&
      next.ts - prev.ts < GROUP_WITHIN_MS,
  );
}
