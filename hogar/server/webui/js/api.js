// A small client of the OpenAI-compatible API: /models, streamed /chat/completions (server-sent events), and the
// Files and Vector Stores endpoints the attached documents use.

export class ApiError extends Error {
  // kind: 'unreachable' (no answer), 'auth' (401), 'http' (another error status or a broken stream)
  // detail: the server's own one-line message, when it sent one
  constructor(message, kind, status = 0, detail = '') {
    super(message);
    this.kind = kind;
    this.status = status;
    this.detail = detail || message;
  }
}

const unreachable = (base) => new ApiError(`Cannot reach the server at ${base}. Is hogar serve running?`, 'unreachable');
const refused = (status, detail, statusText) => new ApiError(
  `The server answered ${status}: ${detail || statusText || 'request failed'}`, status === 401 ? 'auth' : 'http', status,
  detail || statusText || 'request failed');

export class Api {
  constructor(base, key) {
    this.base = base.replace(/\/+$/, '');
    this.key = key || '';
  }

  async _fetch(path, init = {}) {
    const headers = { ...(init.body ? { 'Content-Type': 'application/json' } : {}) };
    if (this.key) headers.Authorization = `Bearer ${this.key}`;
    let response;
    try {
      response = await fetch(this.base + path, { ...init, headers });
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      throw unreachable(this.base);
    }
    if (!response.ok) {
      let detail = '';
      try { detail = (await response.json())?.error?.message || ''; } catch { /* not JSON */ }
      throw refused(response.status, detail, response.statusText);
    }
    return response;
  }

  async json(path, { method = 'GET', body } = {}) {
    const init = body === undefined ? { method } : { method, body: JSON.stringify(body) };
    return (await this._fetch(path, init)).json();
  }

  // POST /files with the bytes' progress (fetch cannot report an upload's progress; XMLHttpRequest can).
  upload(file, { onProgress, signal } = {}) {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) { reject(new DOMException('The upload was cancelled.', 'AbortError')); return; }
      const xhr = new XMLHttpRequest();
      xhr.open('POST', `${this.base}/files`);
      if (this.key) xhr.setRequestHeader('Authorization', `Bearer ${this.key}`);
      xhr.responseType = 'json';
      xhr.upload.onprogress = (e) => { if (e.lengthComputable && e.total) onProgress?.(e.loaded / e.total); };
      xhr.onload = () => {
        if (xhr.status >= 200 && xhr.status < 300 && xhr.response?.id) resolve(xhr.response);
        else reject(refused(xhr.status, xhr.response?.error?.message || '', xhr.statusText));
      };
      xhr.onerror = () => reject(unreachable(this.base));
      xhr.onabort = () => reject(new DOMException('The upload was cancelled.', 'AbortError'));
      signal?.addEventListener('abort', () => xhr.abort(), { once: true });
      const form = new FormData();
      form.append('purpose', 'assistants');
      form.append('file', file, file.name);
      xhr.send(form);
    });
  }

  async models() {
    const body = await (await this._fetch('/models')).json();
    return Array.isArray(body?.data) ? body.data : [];
  }

  // Yields each streamed chunk (parsed JSON). Ends at "data: [DONE]"; a stream cut short is an ApiError.
  async *chat(request, signal) {
    const body = JSON.stringify({ ...request, stream: true, stream_options: { include_usage: true } });
    const response = await this._fetch('/chat/completions', { method: 'POST', body, signal });
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    try {
      for (;;) {
        let part;
        try {
          part = await reader.read();
        } catch (e) {
          if (e.name === 'AbortError') throw e;
          throw new ApiError('The connection to the server was lost during the reply.', 'unreachable');
        }
        if (part.done) break;
        buffer += part.value.replace(/\r\n?/g, '\n');
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const event = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          for (const line of event.split('\n')) {
            if (!line.startsWith('data:')) continue;
            const data = line.slice(5).trim();
            if (data === '[DONE]') return;
            let chunk;
            try { chunk = JSON.parse(data); } catch {
              throw new ApiError('The server sent a reply this page cannot read.', 'http');
            }
            if (chunk.error) throw new ApiError(`The server stopped with an error: ${chunk.error.message}`, 'http');
            yield chunk;
          }
        }
      }
    } finally {
      reader.cancel().catch(() => {});
    }
    throw new ApiError('The server closed the reply before it was complete.', 'http');
  }
}
