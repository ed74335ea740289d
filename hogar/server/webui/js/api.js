// A small client of the OpenAI-compatible API: /models and streamed /chat/completions (server-sent events).

export class ApiError extends Error {
  // kind: 'unreachable' (no answer), 'auth' (401), 'http' (another error status or a broken stream)
  constructor(message, kind, status = 0) {
    super(message);
    this.kind = kind;
    this.status = status;
  }
}

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
      throw new ApiError(`Cannot reach the server at ${this.base}. Is hogar serve running?`, 'unreachable');
    }
    if (!response.ok) {
      let detail = '';
      try { detail = (await response.json())?.error?.message || ''; } catch { /* not JSON */ }
      const kind = response.status === 401 ? 'auth' : 'http';
      const text = detail || response.statusText || 'request failed';
      throw new ApiError(`The server answered ${response.status}: ${text}`, kind, response.status);
    }
    return response;
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
