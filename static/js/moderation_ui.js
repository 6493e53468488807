/**
 * Moderation in the page: role badges and a menu of actions on each person in
 * the member list, the room's slow-mode control, the moderation log panel for
 * admins and moderators, and the notices that tell a person what a moderator
 * did to them. What may be offered comes from moderation.js; the server
 * decides (a refusal comes back as an `error` and shows as a notice).
 *
 * DOM hooks:
 *   #presence > .member > .role-badge[data-role], .member-actions[aria-expanded]
 *       + .member-menu > button.member-action[data-action]
 *   #moderation-tools (hidden unless I moderate the room) > #slow-form > #slow-select
 *   #modlog-button[aria-expanded] > #modlog-panel > #modlog-list > li, #modlog-older
 */

import { badge, explain, logLine, menuItems, moderates, SLOW_CHOICES, durationText } from './moderation.js';

const $ = window.jQuery;

export class ModerationUI {
  /**
   * @param app the client's state (state.js)
   * @param view the View (render.js), whose member list this decorates
   * @param send (frame) => whether it went out
   */
  constructor(app, { view, send }) {
    this.app = app;
    this.view = view;
    this.send = send;
    this.log = { entries: [], more: false, open: false };
    this.menus = 0;
    view.decorateMember = ($li, user, room) => this.decorate($li, user, room);
    this.buildTools();
  }

  get session() {
    return this.app.session;
  }

  /** Me as the rules see me in `room`: {id, admin, role}. */
  standing(room) {
    const me = this.session.me || {};
    return { id: me.id, admin: Boolean(this.session.admin), role: (room && room.role) || 'member' };
  }

  // -- the member list ---------------------------------------------------------

  decorate($li, user, room) {
    const text = badge(user.role);
    if (text) {
      $li
        .find('.member-name')
        .after($('<span class="role-badge">').attr('data-role', user.role).text(text));
    }
    const items = room ? menuItems(this.standing(room), user, room.name) : [];
    if (!items.length) return;
    this.menus += 1;
    const menuId = `member-menu-${this.menus}`;
    const $button = $('<button type="button" class="member-actions">')
      .attr({ 'aria-expanded': 'false', 'aria-controls': menuId, 'aria-label': `Moderate ${user.name}` })
      .append($('<span aria-hidden="true">').text('⋯'));
    const $menu = $('<div class="member-menu">').attr('id', menuId).prop('hidden', true);
    items.forEach((item) => {
      $('<button type="button" class="member-action">')
        .attr('data-action', item.key)
        .text(item.label)
        .on('click', () => {
          this.send(item.frame);
          this.closeMenu($button, $menu, true);
        })
        .appendTo($menu);
    });
    $button.on('click', () => {
      const open = $button.attr('aria-expanded') === 'true';
      if (open) this.closeMenu($button, $menu, false);
      else {
        $button.attr('aria-expanded', 'true');
        $menu.prop('hidden', false);
        $menu.find('button').first().trigger('focus');
      }
    });
    $menu.on('keydown', (event) => {
      if (event.key === 'Escape') this.closeMenu($button, $menu, true);
    });
    $li.append($button, $menu);
  }

  closeMenu($button, $menu, refocus) {
    $button.attr('aria-expanded', 'false');
    $menu.prop('hidden', true);
    if (refocus) $button.trigger('focus');
  }

  // -- the tools: slow mode and the log ---------------------------------------

  buildTools() {
    const $select = $('#slow-select');
    SLOW_CHOICES.forEach((seconds) => {
      const label = seconds ? `one message every ${durationText(seconds)}` : 'off';
      $('<option>').val(String(seconds)).text(label).appendTo($select);
    });
    $('#slow-form').on('submit', (event) => {
      event.preventDefault();
      const room = this.session.active;
      if (room) this.send({ type: 'slow', room, seconds: Number($select.val()) });
    });
    $('#modlog-button').on('click', () => {
      this.log.open = !this.log.open;
      $('#modlog-button').attr('aria-expanded', String(this.log.open));
      $('#modlog-panel').prop('hidden', !this.log.open);
      if (this.log.open) this.send({ type: 'modlog' });
    });
    $('#modlog-older').on('click', () => {
      const last = this.log.entries.at(-1);
      if (last) this.send({ type: 'modlog', before: last.id });
    });
  }

  /** Show the tools that fit my standing in the active room. */
  render() {
    const room = this.session.rooms.get(this.session.active);
    const standing = this.standing(room);
    const mine = moderates(standing);
    $('#moderation-tools').prop('hidden', !mine);
    if (room) $('#slow-select').val(String(room.slowMode || 0));
  }

  // -- frames ------------------------------------------------------------------

  onModerated(frame) {
    const text = explain(frame);
    this.view.showNotice(text, 'moderated');
    this.view.announce(text);
  }

  onModeration(frame) {
    if (this.log.open && frame.entry) {
      this.log.entries.unshift(frame.entry);
      this.renderLog();
    }
  }

  onModlog(frame) {
    const entries = Array.isArray(frame.entries) ? frame.entries : [];
    const first = entries[0];
    const older = first && this.log.entries.length && first.id < this.log.entries.at(-1).id;
    this.log.entries = older ? this.log.entries.concat(entries) : entries;
    this.log.more = Boolean(frame.more);
    this.renderLog();
  }

  renderLog() {
    $('#modlog-list')
      .empty()
      .append(
        this.log.entries.map((entry) =>
          $('<li class="modlog-entry">')
            .attr('data-id', entry.id)
            .append(
              $('<time>')
                .attr('datetime', new Date(entry.ts).toISOString())
                .text(new Date(entry.ts).toLocaleString()),
              ' ',
              $('<span class="modlog-text">').text(logLine(entry)),
            ),
        ),
      );
    $('#modlog-older').prop('hidden', !this.log.more);
  }

  onSlowMode(frame) {
    const room = this.session.rooms.get(frame.room);
    if (!room) return;
    room.slowMode = Number(frame.seconds) > 0 ? Number(frame.seconds) : 0;
    if (!room.slowMode) room.slowUntil = 0;
    const text = room.slowMode
      ? `Slow mode in #${room.name}: one message every ${durationText(room.slowMode)}.`
      : `Slow mode is off in #${room.name}.`;
    this.view.announce(text);
    if (room.name === this.session.active) this.view.renderActiveRoom();
  }

  onRole(frame) {
    const room = this.session.rooms.get(frame.room);
    if (!room || !frame.user) return;
    const role = frame.role === 'member' ? undefined : frame.role;
    const member = room.members.get(frame.user.id);
    if (member) room.members.set(frame.user.id, { ...member, role });
    if (this.session.me && frame.user.id === this.session.me.id) room.role = frame.role;
    if (room.name === this.session.active) this.view.renderActiveRoom();
  }
}
