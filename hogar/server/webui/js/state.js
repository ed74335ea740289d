// What the page holds: the open conversations, the reply being streamed, and preferences kept in localStorage.

// llama.cpp's sampling defaults; empty max tokens and seed mean "until the model stops" and "random".
// json: replies are one JSON object; schema: the text of a JSON schema the replies follow ('' for none).
export const DEFAULTS = { system: '', temperature: 0.8, top_k: 40, top_p: 0.95, min_p: 0.05, repeat_penalty: 1.0,
  max_tokens: null, seed: null, json: false, schema: '' };

export const state = {
  store: null,
  api: null,
  conversations: [],   // saved, newest first
  current: null,       // the open conversation (a draft until its first message)
  models: [],
  modelsError: false,  // the last /models request failed
  streaming: null,     // { conv, msg, controller, node, chunks, first, last }
  filter: '',
};

const thisServer = () => new URL('v1', location.href).href;
const item = (name, fallback = '') => ({
  get: () => localStorage.getItem(name) || fallback,
  set: (v) => (v ? localStorage.setItem(name, v) : localStorage.removeItem(name)),
});
const base = item('hogar.apiBase');
const key = item('hogar.apiKey');
const model = item('hogar.model');
const open = item('hogar.open');

export const prefs = {
  thisServer,
  get base() { return base.get() || thisServer(); },
  set base(v) { base.set(v === thisServer() ? '' : v); },
  get key() { return key.get(); },
  set key(v) { key.set(v); },
  get model() { return model.get(); },
  set model(v) { model.set(v); },
  get open() { return open.get(); },
  set open(v) { open.set(v); },
};

// Other tabs of this page hear of every write and re-read the record, so no tab writes back a stale copy.
export const tabs = 'BroadcastChannel' in window ? new BroadcastChannel('hogar-chat') : null;
export const tell = (type, id) => tabs?.postMessage({ type, id });
