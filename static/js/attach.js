/**
 * Files and images on the page: the Attach button, dropping files on the
 * conversation, pasting an image into the composer; the upload with its
 * progress and its errors; then the message that carries it (through the
 * outbox). Also how an attachment shows in a message: a thumbnail that opens
 * the image, or a file chip (name, size) that downloads it.
 *
 * Over HTTP the page proves who it is with an upload token asked for on the
 * WebSocket (`upload_token`); it is also kept in a cookie for /files, so
 * images of private rooms load too (docs/protocol.md, Files and images).
 * DOM hooks: #attach-button, #file-input, #upload-status, .conversation
 * (.drop-target while a file is dragged over it), .attachment.
 */

import { checkFile, filesOf, formatSize, tokenFresh, uploadError, uploadUrl } from './uploads.js';

const TOKEN_WAIT_MS = 10000;
const TOKEN_REFRESH_MS = 20 * 60 * 1000;

/** An attachment (the message's `attachment` object) as page elements. */
export function attachmentNode(attachment) {
  const $box = $('<div class="attachment">');
  if (attachment.image && attachment.thumb_url) {
    const $img = $('<img class="attachment-thumb" loading="lazy">')
      .attr('src', attachment.thumb_url)
      .attr('alt', attachment.name);
    if (attachment.width > 0 && attachment.height > 0) {
      const scale = Math.min(1, 400 / Math.max(attachment.width, attachment.height));
      $img.attr('width', Math.round(attachment.width * scale));
      $img.attr('height', Math.round(attachment.height * scale));
    }
    $box.append(
      $('<a class="attachment-image" target="_blank" rel="noopener noreferrer">')
        .attr('href', attachment.url)
        .attr('title', `${attachment.name} (${formatSize(attachment.size)}), opens the full image`)
        .append($img),
    );
    return $box;
  }
  return $box.append(
    $('<a class="file-chip">')
      .attr('href', attachment.url)
      .attr('download', attachment.name)
      .append(
        $('<span class="file-icon" aria-hidden="true">').text('📄'),
        $('<span class="file-name">').text(attachment.name),
        $('<span class="file-size">').text(formatSize(attachment.size)),
      ),
  );
}

export class Attacher {
  /**
   * `deps`: {send(frame) → bool, activeRoom() → room or null,
   * queue(room, attachment), notice(text), announce(text)}.
   */
  constructor(deps) {
    this.deps = deps;
    this.maxUpload = 0;
    this.token = null;
    this.waiting = [];
    this.refreshTimer = null;
  }

  /** Wire the button, the file input, drag-and-drop and paste. */
  bind() {
    $('#attach-button').on('click', () => $('#file-input').trigger('click'));
    $('#file-input').on('change', (event) => {
      const files = filesOf(event.target.files);
      event.target.value = '';
      this.uploadAll(files);
    });
    const $target = $('.conversation');
    $target.on('dragover', (event) => {
      if (!this.maxUpload || !hasFiles(event.originalEvent.dataTransfer)) return;
      event.preventDefault();
      $target.addClass('drop-target');
    });
    $target.on('dragleave drop', () => $target.removeClass('drop-target'));
    $target.on('drop', (event) => {
      const files = filesOf(event.originalEvent.dataTransfer && event.originalEvent.dataTransfer.files);
      if (!this.maxUpload || !files.length) return;
      event.preventDefault();
      this.uploadAll(files);
    });
    $('#message-input').on('paste', (event) => {
      const data = event.originalEvent.clipboardData;
      const files = filesOf(data && data.files).filter((f) => /^image\//.test(f.type));
      if (!this.maxUpload || !files.length) return;
      event.preventDefault();
      this.uploadAll(files);
    });
  }

  /** The server's limit (welcome's limits.max_upload): 0 hides the button. */
  configure(maxUpload) {
    this.maxUpload = maxUpload > 0 ? maxUpload : 0;
    $('#attach-button').prop('hidden', !this.maxUpload);
    clearInterval(this.refreshTimer);
    if (!this.maxUpload) return;
    // A token now, and before it runs out: it also lets images of private
    // rooms load (the cookie).
    this.token = null;
    this.askToken();
    this.refreshTimer = setInterval(() => this.askToken(), TOKEN_REFRESH_MS);
  }

  askToken() {
    return this.deps.send({ type: 'upload_token' });
  }

  /** The server's `upload_token` frame. */
  onToken(frame) {
    if (typeof frame.token !== 'string') return;
    this.token = { token: frame.token, expires: Number(frame.expires) || 0 };
    const maxAge = Math.max(0, Math.floor((this.token.expires - Date.now()) / 1000));
    const secure = window.location.protocol === 'https:' ? '; Secure' : '';
    document.cookie = `chat_upload=${frame.token}; Path=/files; Max-Age=${maxAge}; SameSite=Strict${secure}`;
    const waiting = this.waiting;
    this.waiting = [];
    waiting.forEach((resolve) => resolve(this.token));
  }

  /** A fresh token: the one held, or a new one asked for. */
  freshToken() {
    if (tokenFresh(this.token, Date.now())) return Promise.resolve(this.token);
    return new Promise((resolve, reject) => {
      if (!this.askToken()) {
        reject(new Error('not connected'));
        return;
      }
      const timer = setTimeout(() => reject(new Error('no token')), TOKEN_WAIT_MS);
      this.waiting.push((token) => {
        clearTimeout(timer);
        resolve(token);
      });
    });
  }

  async uploadAll(files) {
    for (const file of files) {
      await this.upload(file);
    }
  }

  async upload(file) {
    const room = this.deps.activeRoom();
    const refused = room ? checkFile(file, this.maxUpload) : 'Join a room first.';
    if (refused) {
      this.deps.notice(refused);
      return;
    }
    this.status(`Uploading “${file.name}”…`);
    try {
      let answer = await this.send(file, room, await this.freshToken());
      if (answer.status === 401) {
        // The server restarted (new key) or the token ran out: once more.
        this.token = null;
        answer = await this.send(file, room, await this.freshToken());
      }
      if (answer.status !== 201) {
        this.deps.notice(uploadError(answer.status, answer.body, file.name));
        return;
      }
      this.deps.queue(room, JSON.parse(answer.body));
      this.deps.announce(`“${file.name}” uploaded.`);
    } catch {
      this.deps.notice(uploadError(0, '', file.name));
    } finally {
      this.status('');
    }
  }

  /** POST the file; resolves to {status, body} (status 0: the connection broke). */
  send(file, room, token) {
    return new Promise((resolve) => {
      const xhr = new XMLHttpRequest();
      xhr.open('POST', uploadUrl(room.name, file.name));
      xhr.setRequestHeader('X-Upload-Token', token.token);
      xhr.upload.onprogress = (event) => {
        if (event.lengthComputable && event.total > 0) {
          const percent = Math.floor((100 * event.loaded) / event.total);
          this.status(`Uploading “${file.name}”… ${percent}%`);
        }
      };
      xhr.onload = () => resolve({ status: xhr.status, body: xhr.responseText });
      xhr.onerror = () => resolve({ status: 0, body: '' });
      xhr.send(file);
    });
  }

  status(text) {
    $('#upload-status').text(text).prop('hidden', !text);
  }
}

function hasFiles(transfer) {
  return Boolean(transfer && Array.from(transfer.types || []).includes('Files'));
}
