/**
 * When to try again: reconnect delays with exponential backoff and full
 * jitter, and the pace at which queued messages may go out (the server's
 * token bucket, mirrored a little slower). Randomness and the clock come in
 * as arguments. Pure: no DOM, no timers.
 */

export const RETRY_BASE_MS = 1000;
export const RETRY_MAX_MS = 15000;
export const RETRY_FLOOR_MS = 250; // never a busy loop, whatever the dice say

/**
 * The delay before reconnect attempt `attempt` (0 for the first): a random
 * point in [0, min(cap, base * 2^attempt)], so a restarted server sees its
 * clients spread over the whole window; never below the floor.
 */
export function reconnectDelay(attempt, random = Math.random) {
  const ceiling = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** Math.min(attempt, 16));
  return Math.max(RETRY_FLOOR_MS, Math.round(random() * ceiling));
}

/** The server's per-connection token bucket, as the client paces itself by it. */
export class SendPacer {
  constructor(rate = 5, burst = 10, now = 0) {
    this.setLimits(rate, burst, now);
  }

  /** New limits (a welcome): a new connection starts with a full bucket. */
  setLimits(rate, burst, now) {
    this.rate = rate;
    this.burst = burst;
    this.tokens = burst;
    this.at = now;
  }

  /** The server refused for the rate: nothing left until it refills. */
  drain(now) {
    this.tokens = 0;
    this.at = now;
  }

  /** Take a token at `now`: 0 if one was there, else ms to wait for one. */
  take(now) {
    const pace = this.rate * 0.9; // a little slower than allowed: never refused
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.at) / 1000) * pace);
    this.at = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - this.tokens) / pace) * 1000) + 20;
  }
}
