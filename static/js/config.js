/**
 * The server's settings for the client, as views/pages.py ChatPage renders
 * them into data attributes of <body> (from chatcore.identity,
 * chatcore.protocol and the configured --max-text). The fallbacks only
 * cover a page served without them. Pure: reads through `getAttribute`.
 */

/** `source`: anything with getAttribute(name), such as document.body. */
export function readConfig(source) {
  const int = (name, fallback) => {
    const value = parseInt(source.getAttribute(name), 10);
    return value > 0 ? value : fallback;
  };
  return {
    wsPath: source.getAttribute('data-ws-path') || '/ws',
    maxText: int('data-max-text', 2000),
    nameMax: int('data-name-max', 24),
    roomMax: int('data-room-max', 32),
    historyInitial: int('data-history-initial', 50),
    historyPage: int('data-history-max', 100), // updated by welcome's limits.history_page
    account: source.getAttribute('data-account') === '1', // signed in: no name to pick
  };
}
