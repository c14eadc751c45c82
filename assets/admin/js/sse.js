// Server-sent events over fetch(). The browser's EventSource cannot send headers, so it could
// authenticate only by putting the API key in the URL (where logs and history keep it). Here a
// stream is an ordinary fetch with the Authorization header, read chunk by chunk and parsed by
// `SseParser`, which follows the WHATWG event-stream rules: lines end in CRLF, LF or CR (also
// split across chunks); `:` starts a comment; `data` lines join with LF; `id` sets the last
// event id; an event is dispatched at a blank line; a half-received event at the end is dropped.
// `openStream` reconnects after a drop with `Last-Event-ID`, so nothing is missed.

import { authHeaders, keyRefused } from './auth.js';

export class SseParser {
  /**
   * `onEvent({type, data, id})` for each event; `onComment(text)` for each comment line (the
   * server explains compactions and lag closes in comments).
   */
  constructor(onEvent, onComment = () => {}) {
    this.onEvent = onEvent;
    this.onComment = onComment;
    this.decoder = new TextDecoder();
    this.partial = '';
    this.skipLf = false;
    this.started = false;
    this.type = '';
    this.data = [];
    this.lastId = '';
  }

  /** Feeds bytes (a Uint8Array) or text. */
  push(chunk) {
    const text = typeof chunk === 'string' ? chunk : this.decoder.decode(chunk, { stream: true });
    this.feed(text);
  }

  /** The stream ended: flush the decoder. A line or event without its terminator is dropped. */
  end() {
    this.feed(this.decoder.decode());
    this.partial = '';
    this.data = [];
    this.type = '';
  }

  feed(text) {
    if (!text) return;
    let i = 0;
    if (!this.started) {
      this.started = true;
      if (text.charCodeAt(0) === 0xfeff) i = 1;
    }
    if (this.skipLf) {
      this.skipLf = false;
      if (text[i] === '\n') i += 1;
    }
    let head = this.partial;
    let start = i;
    for (; i < text.length; i += 1) {
      const ch = text[i];
      if (ch !== '\n' && ch !== '\r') continue;
      this.line(head + text.slice(start, i));
      head = '';
      if (ch === '\r') {
        if (i + 1 < text.length) {
          if (text[i + 1] === '\n') i += 1;
        } else {
          this.skipLf = true;
        }
      }
      start = i + 1;
    }
    this.partial = head + text.slice(start);
  }

  line(l) {
    if (l === '') {
      this.dispatch();
      return;
    }
    if (l[0] === ':') {
      this.onComment(l.slice(1).trim());
      return;
    }
    const colon = l.indexOf(':');
    const name = colon === -1 ? l : l.slice(0, colon);
    let value = colon === -1 ? '' : l.slice(colon + 1);
    if (value[0] === ' ') value = value.slice(1);
    switch (name) {
      case 'event':
        this.type = value;
        break;
      case 'data':
        this.data.push(value);
        break;
      case 'id':
        if (!value.includes('\0')) this.lastId = value;
        break;
      default:
        // `retry` and unknown fields: reconnection timing is ours (backoff below).
        break;
    }
  }

  dispatch() {
    if (this.data.length === 0) {
      this.type = '';
      return;
    }
    const ev = { type: this.type || 'message', data: this.data.join('\n'), id: this.lastId };
    this.type = '';
    this.data = [];
    this.onEvent(ev);
  }
}

const RETRY_FIRST_MS = 1000;
const RETRY_MAX_MS = 15000;

function pause(ms, signal) {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    });
  });
}

/**
 * Opens an event stream at `path` and keeps it open until `close()`. Handlers:
 * `onEvent({type, data, id})` (data is the raw text), `onState(state)` with `connecting`,
 * `live`, `reconnecting`, `unauthorized` or `closed`, `onComment(text)`. The first connection
 * starts with the changes made after it opened; a reconnection resumes after the last event
 * received. A 401 stops the stream and asks for the key again.
 */
export function openStream(path, { onEvent, onState = () => {}, onComment = () => {} }) {
  const ctrl = new AbortController();
  let lastId = '';
  let delayMs = RETRY_FIRST_MS;
  const loop = async () => {
    for (;;) {
      onState(lastId ? 'reconnecting' : 'connecting');
      try {
        const headers = { Accept: 'text/event-stream', ...authHeaders() };
        if (lastId) headers['Last-Event-ID'] = lastId;
        const resp = await fetch(path, { headers, signal: ctrl.signal, cache: 'no-store' });
        if (resp.status === 401) {
          onState('unauthorized');
          keyRefused();
          return;
        }
        if (resp.status === 422 && lastId) {
          // The resume position is beyond the server's log (its data was reset): start live.
          lastId = '';
          continue;
        }
        if (resp.ok && resp.body) {
          onState('live');
          delayMs = RETRY_FIRST_MS;
          const parser = new SseParser((ev) => {
            if (ev.id) lastId = ev.id;
            onEvent(ev);
          }, onComment);
          const reader = resp.body.getReader();
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            parser.push(value);
          }
          parser.end();
        } else {
          await resp.body?.cancel();
        }
      } catch {
        // A network error or a dropped connection (or the page closed the stream): reconnect
        // below unless closed.
        if (ctrl.signal.aborted) break;
      }
      if (ctrl.signal.aborted) break;
      onState('reconnecting');
      await pause(delayMs, ctrl.signal);
      delayMs = Math.min(delayMs * 2, RETRY_MAX_MS);
      if (ctrl.signal.aborted) break;
    }
    onState('closed');
  };
  loop();
  return {
    close() {
      ctrl.abort();
    },
  };
}
