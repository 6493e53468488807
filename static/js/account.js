/**
 * The account panel of an invite-only chat: sign in another device (a
 * one-time link), list and revoke this account's sessions, sign out, and for
 * admins create invites. It sends the account frames of docs/protocol.md
 * ("Accounts") and renders their answers; `sessionLabel` is pure.
 *
 * DOM hooks: #account-button, #account-panel > #signin-link-button,
 *   #sessions-button, #invite-button, .signout-form, #account-link >
 *   #account-link-label, #account-link-input, #account-link-copy,
 *   #account-link-help, #session-list > .session[data-session-id]
 *   (.current) > .session-revoke
 */

const MINUTE_MS = 60000;

/** "This browser · signed in 3 Dec 2026, 14:05 · last seen …" for one session. */
export function sessionLabel(session, formatTime) {
  const parts = [session.current ? 'This browser' : 'Another browser'];
  parts.push(`signed in ${formatTime(session.created)}`);
  parts.push(`last seen ${formatTime(session.last_seen)}`);
  return parts.join(' · ');
}

const formatTime = (ms) =>
  new Date(ms).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });

export class AccountPanel {
  /** `send(frame)` sends on the chat's connection; `announce(text)` reads it out. */
  constructor(send, announce) {
    this.send = send;
    this.announce = announce;
    this.$panel = $('#account-panel');
    this.$button = $('#account-button');
    this.present = this.$panel.length > 0;
  }

  bind() {
    if (!this.present) return;
    this.$button.on('click', () => this.toggle());
    $('#signin-link-button').on('click', () => this.send({ type: 'signin_link' }));
    $('#sessions-button').on('click', () => this.send({ type: 'sessions' }));
    $('#invite-button').on('click', () => this.send({ type: 'invite' }));
    $('#account-link-copy').on('click', () => this.copyLink());
    $('#session-list').on('click', '.session-revoke', (event) => {
      const id = $(event.currentTarget).closest('.session').attr('data-session-id');
      this.send({ type: 'revoke', id });
    });
  }

  toggle(open) {
    const show = open === undefined ? this.$panel.prop('hidden') : open;
    this.$panel.prop('hidden', !show);
    this.$button.attr('aria-expanded', String(show));
  }

  /**
   * The connection dropped: if that is because this browser is no longer
   * signed in (a WebSocket cannot tell a 401 from a network error), reload
   * the page, which then says how to get back in.
   */
  checkSignedIn() {
    fetch(window.location.pathname, { method: 'HEAD', credentials: 'same-origin' }).then(
      (response) => {
        if (response.status === 401 || response.status === 403) window.location.reload();
      },
      () => {}, // offline: the reconnects go on
    );
  }

  /** The welcome of an account: admins may create invites. */
  onWelcome(frame) {
    if (!this.present) return;
    this.$button.prop('hidden', !frame.account);
    $('#invite-button').prop('hidden', !frame.admin);
  }

  showLink(label, url, expires) {
    $('#account-link').prop('hidden', false);
    $('#account-link-label').text(label);
    $('#account-link-input').val(url);
    const minutes = Math.max(1, Math.round((expires - Date.now()) / MINUTE_MS));
    const help =
      minutes <= 60
        ? `Works once, for ${minutes} more minute${minutes === 1 ? '' : 's'}.`
        : `Works until ${formatTime(expires)}.`;
    $('#account-link-help').text(help);
    $('#account-link-input').trigger('focus').trigger('select');
  }

  onSigninLink(frame) {
    this.showLink('Open this link in the other browser', frame.url, frame.expires);
  }

  onInvite(frame) {
    const uses = frame.uses === 1 ? 'one person' : `${frame.uses} people`;
    this.showLink(`Invite link (lets ${uses} in)`, frame.url, frame.expires);
  }

  onSessions(frame) {
    const $list = $('#session-list').empty().prop('hidden', false);
    (frame.sessions || []).forEach((session) => {
      const $item = $('<li class="session">')
        .attr('data-session-id', session.id)
        .toggleClass('current', !!session.current);
      $('<span class="session-label">').text(sessionLabel(session, formatTime)).appendTo($item);
      $('<button type="button" class="button button-quiet button-sm session-revoke">')
        .text(session.current ? 'Sign out here' : 'Revoke')
        .appendTo($item);
      $list.append($item);
    });
    this.announce(`${frame.sessions.length} signed-in browser${frame.sessions.length === 1 ? '' : 's'}`);
  }

  copyLink() {
    const url = $('#account-link-input').val();
    const done = () => this.announce('Link copied');
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(url).then(done, () => this.selectLink());
    } else {
      this.selectLink();
    }
  }

  selectLink() {
    $('#account-link-input').trigger('focus').trigger('select');
  }
}
