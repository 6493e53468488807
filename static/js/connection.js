/**
 * The WebSocket and its life: connecting, the heartbeat that notices a dead
 * link, reconnecting with backoff (backoff.js) and the countdown shown while
 * waiting. What the frames mean is main.js's business, through `hooks`:
 *   onFrame(text)      every frame of the current socket
 *   onDisconnected()   the current socket is gone (a retry is then scheduled)
 *   onStatus(status)   idle | connecting | connected | disconnected
 *   onCountdown()      once a second while a retry waits
 *   url()              the address to connect to
 */

import { reconnectDelay } from './backoff.js';

const STABLE_MS = 10000; // up this long: the next drop starts from attempt 0
const CONNECT_TIMEOUT_MS = 10000; // no welcome by then: try again
// A silent server is given up within about 15 s (idle + timeout + two checks);
// a busy link is never pinged, a quiet one once every 8 s.
const HEARTBEAT_IDLE_MS = 8000; // quiet this long: ping
const HEARTBEAT_TIMEOUT_MS = 5000; // no answer to the ping: the link is dead
const HEARTBEAT_EVERY_MS = 1000;
// Close codes after which retrying is pointless (docs/protocol.md).
const CLOSE_KICKED = 4000; // retry once the kick ends (link.resumeAt)
const CLOSE_BANNED = 4003; // do not retry: a new connection is refused

export class Connection {
  constructor(link, hooks) {
    this.link = link;
    this.hooks = hooks;
    this.timers = { retry: null, countdown: null, stable: null, connect: null, heartbeat: null };
    this.lastFrameAt = 0;
    this.pingSentAt = 0;
  }

  isConnected() {
    return this.link.status === 'connected';
  }

  /** Whether the user has seen a connection fail (the banner's business). */
  hasTrouble() {
    return this.link.everConnected || this.link.attempt > 0;
  }

  connect() {
    const { link } = this;
    clearTimeout(this.timers.retry);
    this.timers.retry = null;
    this.stopCountdown();
    if (link.ws) {
      // "Reconnect now" during an attempt: the old socket is abandoned.
      const old = link.ws;
      link.ws = null;
      closeQuietly(old);
    }
    link.ended = null; // a reconnect asked for by the user tries again
    this.setStatus('connecting');
    let ws;
    try {
      ws = new WebSocket(this.hooks.url());
    } catch (e) {
      this.scheduleReconnect();
      return;
    }
    link.ws = ws;
    clearTimeout(this.timers.connect);
    this.timers.connect = setTimeout(() => {
      if (ws === link.ws && !this.isConnected()) this.drop();
    }, CONNECT_TIMEOUT_MS);
    // Events of a socket that was replaced are stale: ignore them.
    ws.addEventListener('message', (event) => {
      if (ws !== link.ws) return;
      this.lastFrameAt = Date.now();
      this.pingSentAt = 0;
      this.hooks.onFrame(event.data);
    });
    ws.addEventListener('close', (event) => {
      if (ws !== link.ws) return;
      link.ws = null;
      this.onClosed(event.code);
    });
  }

  /** The server welcomed us: connected, with a heartbeat. */
  welcomed() {
    clearTimeout(this.timers.connect);
    this.link.everConnected = true;
    clearTimeout(this.timers.stable);
    this.timers.stable = setTimeout(() => {
      this.link.attempt = 0;
    }, STABLE_MS);
    this.setStatus('connected');
    this.startHeartbeat();
  }

  /** Give up on the current socket at once (a dead link may never say so). */
  drop() {
    const ws = this.link.ws;
    this.link.ws = null;
    if (ws) closeQuietly(ws);
    this.onClosed();
  }

  send(frame) {
    const ws = this.link.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(frame));
    return true;
  }

  reconnectNow() {
    this.link.attempt = 0;
    this.connect();
  }

  onClosed(code) {
    clearTimeout(this.timers.connect);
    clearTimeout(this.timers.stable);
    this.stopHeartbeat();
    this.hooks.onDisconnected();
    if (code === CLOSE_BANNED) {
      this.link.ended = 'banned';
      this.setStatus('disconnected');
      return;
    }
    this.scheduleReconnect(code === CLOSE_KICKED ? this.link.resumeAt : 0);
  }

  /** Retry after the backoff's delay, and not before `notBefore` (ms). */
  scheduleReconnect(notBefore = 0) {
    const { link } = this;
    clearTimeout(this.timers.retry);
    const delay = Math.max(reconnectDelay(link.attempt), notBefore - Date.now());
    link.attempt += 1;
    link.retryAt = Date.now() + delay;
    this.timers.retry = setTimeout(() => this.connect(), delay);
    this.setStatus('disconnected');
    this.startCountdown();
  }

  setStatus(status) {
    this.link.status = status;
    this.hooks.onStatus(status);
  }

  startCountdown() {
    this.stopCountdown();
    this.hooks.onCountdown();
    this.timers.countdown = setInterval(() => this.hooks.onCountdown(), 1000);
  }

  stopCountdown() {
    clearInterval(this.timers.countdown);
    this.timers.countdown = null;
  }

  // A link can die without a close event (a laptop asleep, a lost Wi-Fi):
  // a quiet connection is pinged, and dropped if the ping goes unanswered.
  startHeartbeat() {
    this.stopHeartbeat();
    this.lastFrameAt = Date.now();
    this.pingSentAt = 0;
    this.timers.heartbeat = setInterval(() => {
      if (!this.isConnected()) return;
      const now = Date.now();
      if (this.pingSentAt) {
        if (now - this.pingSentAt > HEARTBEAT_TIMEOUT_MS) this.drop();
      } else if (now - this.lastFrameAt > HEARTBEAT_IDLE_MS && this.send({ type: 'ping' })) {
        this.pingSentAt = now;
      }
    }, HEARTBEAT_EVERY_MS);
  }

  stopHeartbeat() {
    clearInterval(this.timers.heartbeat);
    this.timers.heartbeat = null;
  }
}

function closeQuietly(ws) {
  try {
    ws.close();
  } catch (e) {
    /* already closing */
  }
}
