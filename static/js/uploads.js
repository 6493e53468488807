/**
 * Files and images, the pure part: sizes as people read them, the checks a
 * file passes before it is sent, the upload's address, what a refused upload
 * tells the person, and whether an upload token is still good. The limit
 * comes from the server (welcome's limits.max_upload; 0: uploads are off).
 * No DOM, no jQuery: unit-tested with node --test.
 */

// A token this close to its expiry is renewed before an upload.
export const TOKEN_MARGIN_MS = 5 * 60 * 1000;

/** 1.5 MB, 12 KB, 300 bytes (binary units, like the server's messages). */
export function formatSize(bytes) {
  const n = Number(bytes) || 0;
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MB`;
  if (n >= 1 << 10) return `${Math.round(n / (1 << 10))} KB`;
  return `${n} ${n === 1 ? 'byte' : 'bytes'}`;
}

/**
 * Why `file` ({name, size}) cannot be uploaded, or null when it can.
 * `maxUpload`: the server's limit in bytes (0: uploads are off).
 */
export function checkFile(file, maxUpload) {
  if (!(maxUpload > 0)) return 'Uploads are turned off on this server.';
  if (!file) return 'No file was chosen.';
  const name = file.name || 'The file';
  if (!(file.size > 0)) return `“${name}” is empty.`;
  if (file.size > maxUpload) {
    return `“${name}” is ${formatSize(file.size)}; the limit is ${formatSize(maxUpload)}.`;
  }
  return null;
}

/** Where a file for `room` is sent (POST, the body is the file). */
export function uploadUrl(room, name) {
  const query = `room=${encodeURIComponent(room)}`;
  return `/upload?${query}${name ? `&name=${encodeURIComponent(name)}` : ''}`;
}

/**
 * What to tell the person about a refused upload: the server's message
 * when it sent one ({error, message} JSON), else a sentence for the status.
 */
export function uploadError(status, body, name) {
  let message = '';
  try {
    const parsed = JSON.parse(body || '');
    if (parsed && typeof parsed.message === 'string') message = parsed.message;
  } catch {
    message = '';
  }
  const what = name ? `“${name}”` : 'The file';
  if (status === 0) return `${what} was not uploaded: the connection broke.`;
  if (message) return `${what} was not uploaded: ${message}.`;
  if (status === 413) return `${what} was not uploaded: it is too large.`;
  return `${what} was not uploaded (the server answered ${status}).`;
}

/** Whether `token` ({token, expires}) can still be used at `now` (ms). */
export function tokenFresh(token, now) {
  return Boolean(token && typeof token.token === 'string' && token.expires - now > TOKEN_MARGIN_MS);
}

/** The files worth uploading from a paste or a drop: every file given. */
export function filesOf(list) {
  return Array.from(list || []).filter((file) => file && typeof file.size === 'number');
}
