/**
 * The quiet joined/left lines on the page: each room's PresenceLines
 * (presence_lines.js) decides, this puts the line at the end of the room's
 * conversation, changes it in place or takes it away.
 *
 * DOM hooks: .message-list > .presence-line[data-line][data-after]
 */

import { lineText, PresenceLines } from './presence_lines.js';

const $ = window.jQuery;

export class PresenceLinesView {
  /** `deps`: {view}. */
  constructor(app, deps) {
    this.app = app;
    this.deps = deps;
    this.rooms = new Map(); // room name → PresenceLines
  }

  linesOf(room) {
    let lines = this.rooms.get(room.name);
    if (!lines) {
      lines = new PresenceLines();
      this.rooms.set(room.name, lines);
    }
    return lines;
  }

  /** A `join` or `leave` presence event of someone else, in `room`. */
  onPresence(room, frame) {
    if (!room.$list || !frame.user || this.deps.view.isMe(frame.user)) return;
    const members = typeof frame.count === 'number' ? frame.count : room.members.size;
    const shown = this.linesOf(room).event(frame.event, frame.user, Date.now(), members);
    if (!shown) return;
    if (shown.removed) {
      room.$list.find(`.presence-line[data-line="${shown.removed.key}"]`).remove();
      this.deps.view.updateEmpty(room);
      return;
    }
    let $line = room.$list.find(`.presence-line[data-line="${shown.line.key}"]`);
    if (!$line.length) {
      const follow = room.stuckToBottom;
      $line = $('<li class="presence-line">')
        .attr('data-line', shown.line.key)
        .attr('data-after', room.lastId || 0);
      room.$list.append($line);
      this.deps.view.updateEmpty(room);
      if (follow && room.name === this.app.session.active) this.deps.view.scrollToBottom(room);
    }
    $line.text(lineText(shown.line));
  }

  /** A message came to `room`: the next line starts afresh below it. */
  onMessage(room) {
    this.linesOf(room).interrupt();
  }

  forget(roomName) {
    this.rooms.delete(roomName);
  }
}
