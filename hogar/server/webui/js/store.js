// Conversations live in this browser's IndexedDB (one record per conversation), so the page stays a plain client of
// any OpenAI-compatible /v1 API and needs nothing stored on the server. Export/import moves them between browsers.

const DB_NAME = 'hogar-chat';
const STORE = 'conversations';
export const EXPORT_FORMAT = 'hogar-chat';
const ROLES = new Set(['system', 'user', 'assistant']);

function request(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

export class Store {
  constructor(db) {
    this.db = db;            // null: IndexedDB unavailable, records kept in memory only
    this.memory = new Map();
  }

  static async open() {
    if (!('indexedDB' in window)) return new Store(null);
    try {
      const req = indexedDB.open(DB_NAME, 1);
      req.onupgradeneeded = () => req.result.createObjectStore(STORE, { keyPath: 'id' });
      const db = await request(req);
      navigator.storage?.persist?.().catch(() => {});  // ask the browser not to evict the chats under disk pressure
      return new Store(db);
    } catch {
      return new Store(null);
    }
  }

  get persistent() { return this.db !== null; }

  async _tx(mode, fn) {
    const tx = this.db.transaction(STORE, mode);
    const result = fn(tx.objectStore(STORE));
    await new Promise((resolve, reject) => {
      tx.oncomplete = resolve;
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error || new Error('the browser refused to store the conversation'));
    });
    return result;
  }

  async all() {
    if (!this.db) return [...this.memory.values()];
    return request(this.db.transaction(STORE).objectStore(STORE).getAll());
  }

  async get(id) {
    if (!this.db) return this.memory.get(id);
    return request(this.db.transaction(STORE).objectStore(STORE).get(id));
  }

  async put(conversation) {
    const copy = structuredClone(conversation);
    if (!this.db) { this.memory.set(copy.id, copy); return; }
    await this._tx('readwrite', (s) => s.put(copy));
  }

  async delete(id) {
    if (!this.db) { this.memory.delete(id); return; }
    await this._tx('readwrite', (s) => s.delete(id));
  }
}

export function newId() {
  return (crypto.randomUUID ? crypto.randomUUID() : `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`);
}

export function exportDocument(conversations) {
  return { format: EXPORT_FORMAT, version: 1, exported: new Date().toISOString(), conversations };
}

export const SETTINGS = ['temperature', 'top_k', 'top_p', 'min_p', 'repeat_penalty', 'max_tokens', 'seed'];

const finite = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const text = (v) => (typeof v === 'string' ? v : undefined);

const STATUSES = new Set(['uploading', 'indexing', 'done', 'failed']);
// The server's ids, as the page puts them into URLs: an imported file's other strings are dropped, so that a crafted
// id such as "../models/x" cannot make the page send a request anywhere else.
const STORE_ID = /^vs_[0-9a-f]+$/;
const FILE_ID = /^file-[0-9a-f]+$/;

// The passages a reply cites (the server's `sources`), as the page keeps them with the message.
export function cleanSources(list) {
  if (!Array.isArray(list)) return [];
  return list.filter((s) => s && typeof s === 'object' && Number.isInteger(s.index) && typeof s.text === 'string')
    .map((s) => {
      const clean = { index: s.index, text: s.text, page: Number.isInteger(s.page) ? s.page : null,
        score: finite(s.score) };
      for (const k of ['where', 'filename', 'source', 'heading', 'collection']) if (text(s[k])) clean[k] = s[k];
      if (FILE_ID.test(text(s.file_id) ?? '')) clean.file_id = s.file_id;
      if (STORE_ID.test(text(s.vector_store_id) ?? '')) clean.vector_store_id = s.vector_store_id;
      return clean;
    });
}

// The conversation's documents: its vector store and the files attached to it. An imported chat owns nothing on the
// server (no `made`, no `uploaded`): it may be a copy whose original still uses them, or a file crafted to make the
// page delete someone's collection, so deleting it deletes nothing there.
function cleanDocs(d) {
  if (!d || typeof d !== 'object') return null;
  const store = STORE_ID.test(text(d.store?.id) ?? '') ? { id: d.store.id, name: text(d.store.name) ?? '' } : null;
  const files = (Array.isArray(d.files) ? d.files : [])
    .filter((f) => f && text(f.filename) !== undefined && (!f.file_id || FILE_ID.test(text(f.file_id) ?? '')))
    .map((f) => ({ key: text(f.key) || newId(), file_id: text(f.file_id) ?? '', filename: f.filename,
      bytes: finite(f.bytes) ?? 0, status: STATUSES.has(f.status) ? f.status : 'failed', error: text(f.error) ?? '' }));
  return { store, picked: d.picked === true, files };
}

// Only known fields of the right type are kept: a file from elsewhere cannot break the page.
function cleanMessage(m) {
  const clean = { role: m.role, content: m.content };
  for (const k of ['error', 'finish', 'model']) if (text(m[k]) !== undefined) clean[k] = m[k];
  if (m.stopped === true) clean.stopped = true;
  if (m.role === 'assistant' && m.json === true) clean.json = true;  // shown as a JSON code block
  if (m.stats && typeof m.stats === 'object') clean.stats = { tokens: finite(m.stats.tokens), tps: finite(m.stats.tps) };
  const sources = cleanSources(m.sources);
  if (m.role === 'assistant' && sources.length) clean.sources = sources;
  return clean;
}

function cleanSettings(s) {
  const clean = { system: '' };
  if (!s || typeof s !== 'object') return clean;
  clean.system = text(s.system) ?? '';
  for (const k of SETTINGS) if (k in s) clean[k] = finite(s[k]);
  if (typeof s.json === 'boolean') clean.json = s.json;
  if (text(s.schema) !== undefined) clean.schema = s.schema;
  return clean;
}

// Accepts this page's export, a list of conversations, or one conversation. Throws an Error saying what is wrong.
export function parseImport(source) {
  let doc;
  try { doc = JSON.parse(source); } catch (e) { throw new Error(`the file is not JSON (${e.message})`); }
  const list = Array.isArray(doc) ? doc : Array.isArray(doc?.conversations) ? doc.conversations : [doc];
  return list.map((c, i) => {
    const where = `conversation ${i + 1}`;
    if (!c || typeof c !== 'object' || !Array.isArray(c.messages)) throw new Error(`${where} has no "messages" list`);
    const messages = c.messages.map((m, j) => {
      if (!m || !ROLES.has(m.role) || typeof m.content !== 'string') {
        throw new Error(`${where}, message ${j + 1}: needs a role (system, user or assistant) and text content`);
      }
      return cleanMessage(m);
    });
    const settings = cleanSettings(c.settings);
    while (messages.length && messages[0].role === 'system') {  // chats from elsewhere: the system prompt is a setting here
      settings.system = [settings.system, messages.shift().content].filter(Boolean).join('\n\n');
    }
    const now = Date.now();
    const total = finite(c.usage?.total_tokens);
    return {
      id: text(c.id) || newId(),
      title: text(c.title)?.trim() || 'Imported chat',
      titleEdited: c.titleEdited === true,
      created: finite(c.created) ?? now,
      updated: finite(c.updated) ?? now,
      model: text(c.model) ?? '',
      settings,
      messages: messages.filter((m) => m.role !== 'system'),
      usage: total === null ? null : { total_tokens: total },
      docs: cleanDocs(c.docs),
    };
  });
}
