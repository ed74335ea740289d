// The chat page: conversations (IndexedDB), a streamed reply at a time, per-conversation settings.
import { Api, ApiError } from './api.js';
import { copyText, renderInto } from './markdown.js';
import { exportDocument, newId, parseImport, SETTINGS as NUMBERS, Store } from './store.js';

// llama.cpp's sampling defaults; empty max tokens and seed mean "until the model stops" and "random".
const DEFAULTS = { system: '', temperature: 0.8, top_k: 40, top_p: 0.95, min_p: 0.05, repeat_penalty: 1.0,
  max_tokens: null, seed: null };
const INTEGERS = new Set(['top_k', 'max_tokens', 'seed']);
const SAVE_EVERY_MS = 1000;

const $ = (id) => document.getElementById(id);
const el = (tag, props = {}, ...children) => {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
};

const state = {
  store: null,
  api: null,
  conversations: [],   // saved, newest first
  current: null,       // the open conversation (a draft until its first message)
  models: [],
  streaming: null,     // { conv, msg, controller, node }
  filter: '',
};

// ---- settings kept in localStorage -------------------------------------------------------------------------------

const prefs = {
  get base() { return localStorage.getItem('hogar.apiBase') || new URL('v1', location.href).href; },
  set base(v) { if (v) localStorage.setItem('hogar.apiBase', v); else localStorage.removeItem('hogar.apiBase'); },
  get key() { return localStorage.getItem('hogar.apiKey') || ''; },
  set key(v) { if (v) localStorage.setItem('hogar.apiKey', v); else localStorage.removeItem('hogar.apiKey'); },
  get model() { return localStorage.getItem('hogar.model') || ''; },
  set model(v) { localStorage.setItem('hogar.model', v); },
  get open() { return localStorage.getItem('hogar.open') || ''; },
  set open(v) { localStorage.setItem('hogar.open', v); },
};

// ---- the banner and the one dialog for questions ----------------------------------------------------------------

let retryAction = null;
let noticeTimer = 0;
function showBanner(message, { retry = null, notice = false } = {}) {
  clearTimeout(noticeTimer);
  $('banner-text').textContent = message;
  retryAction = retry;
  $('banner-retry').hidden = !retry;
  $('banner').classList.toggle('notice', notice);
  $('banner').hidden = false;
  if (notice) noticeTimer = setTimeout(clearError, 6000);
}
const showError = (message, retry = null) => showBanner(message, { retry });
const showNotice = (message) => showBanner(message, { notice: true });
function clearError() { $('banner').hidden = true; retryAction = null; }

function ask({ title, text = '', label = '', value = '', type = 'text', ok = 'OK' }) {
  const dialog = $('ask');
  $('ask-title').textContent = title;
  $('ask-text').textContent = text;
  $('ask-text').hidden = !text;
  $('ask-label').hidden = !label;
  $('ask-label-text').textContent = label;
  const input = $('ask-input');
  input.type = type;
  input.value = value;
  $('ask-ok').textContent = ok;
  $('ask-ok').classList.toggle('danger', ok === 'Delete');
  $('ask-ok').classList.toggle('primary', ok !== 'Delete');
  dialog.returnValue = '';
  dialog.showModal();
  if (label) input.select(); else $('ask-ok').focus();
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => {
      resolve(dialog.returnValue === 'ok' ? (label ? input.value : true) : null);
    }, { once: true });
  });
}

// ---- conversations ------------------------------------------------------------------------------------------------

function draft() {
  const now = Date.now();
  return { id: newId(), title: 'New chat', titleEdited: false, created: now, updated: now, model: prefs.model,
    settings: { ...DEFAULTS }, messages: [], usage: null };
}

const isSaved = (conv) => state.conversations.includes(conv);

// Other tabs of this page hear of every write and re-read the record, so no tab writes back a stale copy.
const tabs = 'BroadcastChannel' in window ? new BroadcastChannel('hogar-chat') : null;
const tell = (type, id) => tabs?.postMessage({ type, id });

async function save(conv) {
  if (conv.deleted) return;  // a reply still ending must not bring it back
  conv.updated = Date.now();
  if (!isSaved(conv)) {
    state.conversations.unshift(conv);
    if (conv === state.current) prefs.open = conv.id;
  }
  try {
    await state.store.put(conv);
    tell('saved', conv.id);
  } catch (e) {
    showError(`This browser would not store the conversation (${e?.message || e}). Export your chats to keep them.`);
  }
}

function titleFrom(text) {
  const line = text.trim().split('\n')[0].replace(/\s+/g, ' ');
  return line.length > 48 ? `${line.slice(0, 47)}\u2026` : line || 'New chat';
}

function open(conv) {
  state.current = conv;
  prefs.open = isSaved(conv) ? conv.id : '';
  renderList();
  renderConversation();
  renderSettings();
  closeSidebar();
}

function newChat() {
  if (state.current && !isSaved(state.current) && !state.current.messages.length) {
    open(state.current);
  } else {
    open(draft());
  }
  $('input').focus();
}

async function rename(conv) {
  const title = await ask({ title: 'Rename conversation', label: 'Title', value: conv.title, ok: 'Rename' });
  if (title === null || !title.trim()) return;
  conv.title = title.trim();
  conv.titleEdited = true;
  await save(conv);
  renderList();
  renderTitle();
  $('conversations').querySelector('li.current .rename')?.focus();
}

async function remove(conv) {
  const yes = await ask({ title: 'Delete conversation?', text: `\u201c${conv.title}\u201d will be deleted from this ` +
    'browser. Export first if you want to keep a copy.', ok: 'Delete' });
  if (!yes) return;
  conv.deleted = true;
  if (state.streaming?.conv === conv) state.streaming.controller.abort();
  state.conversations = state.conversations.filter((c) => c !== conv);
  try {
    await state.store.delete(conv.id);
    tell('deleted', conv.id);
  } catch (e) {
    showError(`Could not delete: ${e?.message || e}`);
  }
  if (state.current === conv) open(state.conversations[0] || draft());
  else renderList();
  ($('conversations').querySelector('.open') || $('new-chat')).focus();
}

// ---- the conversation list ----------------------------------------------------------------------------------------

function matches(conv, needle) {
  if (!needle) return true;
  if (conv.title.toLowerCase().includes(needle)) return true;
  return conv.messages.some((m) => m.content.toLowerCase().includes(needle));
}

function renderList() {
  const list = $('conversations');
  const needle = state.filter.trim().toLowerCase();
  const shown = state.conversations.filter((c) => matches(c, needle));
  list.replaceChildren(...shown.map((conv) => {
    const when = new Date(conv.updated).toLocaleString([], { dateStyle: 'short', timeStyle: 'short' });
    const openBtn = el('button', { type: 'button', className: 'open', title: conv.title },
      el('span', { textContent: conv.title }), el('small', { textContent: when }));
    if (conv === state.current) openBtn.setAttribute('aria-current', 'true');
    openBtn.addEventListener('click', () => { open(conv); $('input').focus(); });
    const renameBtn = el('button', { type: 'button', className: 'icon rename', textContent: '\u270E' });
    renameBtn.setAttribute('aria-label', `Rename \u201c${conv.title}\u201d`);
    renameBtn.addEventListener('click', () => rename(conv));
    const deleteBtn = el('button', { type: 'button', className: 'icon delete', textContent: '\u2715' });
    deleteBtn.setAttribute('aria-label', `Delete \u201c${conv.title}\u201d`);
    deleteBtn.addEventListener('click', () => remove(conv));
    return el('li', { className: conv === state.current ? 'current' : '' }, openBtn, renameBtn, deleteBtn);
  }));
  const none = $('no-conversations');
  none.hidden = shown.length > 0;
  none.textContent = needle ? 'No conversation matches.' : 'No conversations yet.';
}

// ---- messages -----------------------------------------------------------------------------------------------------

function renderTitle() {
  $('title').textContent = state.current.title;
  document.title = state.current.messages.length ? `${state.current.title} \u2013 hogar` : 'hogar chat';
}

function messageMeta(msg) {
  const parts = [];
  const s = msg.stats;
  if (s?.tokens) parts.push(`${s.tokens} tokens`);
  if (s?.tps) parts.push(`${s.tps.toFixed(1)} tokens/s`);
  if (msg.stopped) parts.push('stopped');
  else if (msg.finish === 'length') parts.push('cut at max tokens');
  return parts.join(' \u00b7 ');
}

const rendered = new WeakMap();  // message -> { content, html }

function messageNode(conv, msg, index) {
  const isLast = index === conv.messages.length - 1;
  const node = el('article', { className: `msg ${msg.role}` });
  node.dataset.index = index;
  const body = el('div', { className: 'body' });
  if (msg.role === 'user') body.textContent = msg.content;
  else if (state.streaming?.msg === msg) renderInto(body, msg.content, { final: false });
  else {
    const cached = rendered.get(msg);  // sanitized and highlighted already: reopening a chat is cheap
    if (cached?.content === msg.content) body.innerHTML = cached.html;
    else {
      renderInto(body, msg.content, { final: true });
      rendered.set(msg, { content: msg.content, html: body.innerHTML });
    }
  }
  node.append(el('div', { className: 'role', textContent: msg.role === 'user' ? 'You' : 'Assistant' }), body);
  if (msg.error) node.append(el('div', { className: 'error', textContent: msg.error }));
  const meta = messageMeta(msg);
  if (meta) node.append(el('div', { className: 'meta', textContent: meta }));
  const busy = state.streaming !== null;
  const actions = el('div', { className: 'actions' });
  if (msg.role === 'user') {
    const edit = el('button', { type: 'button', className: 'edit-msg', textContent: 'Edit', disabled: busy });
    edit.addEventListener('click', () => startEdit(conv, index, node));
    actions.append(edit);
  } else {
    if (msg.content) {
      const copy = el('button', { type: 'button', className: 'copy-msg', textContent: 'Copy' });
      copy.addEventListener('click', () => flash(copy, copyText(msg.content)));
      actions.append(copy);
    }
    if (isLast) {
      const again = el('button', { type: 'button', className: 'regenerate', textContent: 'Regenerate', disabled: busy });
      again.addEventListener('click', () => regenerate(conv));
      actions.append(again);
    }
  }
  if (!(state.streaming?.msg === msg)) node.append(actions);
  return node;
}

async function flash(button, promise) {
  const ok = await promise;
  const before = button.textContent;
  button.textContent = ok ? 'Copied' : 'Copy failed';
  setTimeout(() => { button.textContent = before; }, 1500);
}

function renderConversation() {
  const conv = state.current;
  renderTitle();
  const box = $('messages');
  const nodes = conv.messages.map((m, i) => messageNode(conv, m, i));
  $('empty').hidden = nodes.length > 0;
  box.replaceChildren($('empty'), ...nodes);
  if (state.streaming?.conv === conv) {
    state.streaming.node = nodes[nodes.length - 1];
    state.streaming.node.classList.add('streaming');
  }
  box.scrollTop = box.scrollHeight;
  renderStatus();
  renderModelPick();
}

function startEdit(conv, index, node) {
  const msg = conv.messages[index];
  const area = el('textarea', { value: msg.content });
  area.setAttribute('aria-label', 'Edit the message');
  const send = el('button', { type: 'button', className: 'primary', textContent: 'Send' });
  const cancel = el('button', { type: 'button', textContent: 'Cancel' });
  const form = el('div', { className: 'edit' }, area, el('div', { className: 'actions' }, cancel, send));
  node.querySelector('.body').replaceWith(form);
  node.querySelector(':scope > .actions')?.remove();
  const submit = () => {
    const text = area.value.trim();
    if (!text || state.streaming) return;
    conv.messages = conv.messages.slice(0, index);
    conv.messages.push({ role: 'user', content: text });
    conv.usage = null;
    if (index === 0 && !conv.titleEdited) conv.title = titleFrom(text);
    generate(conv);
  };
  send.addEventListener('click', submit);
  cancel.addEventListener('click', () => renderConversation());
  area.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); submit(); }
    if (e.key === 'Escape') { e.preventDefault(); renderConversation(); }
  });
  area.focus();
  area.setSelectionRange(area.value.length, area.value.length);
}

function regenerate(conv) {
  if (state.streaming) return;
  while (conv.messages.length && conv.messages[conv.messages.length - 1].role === 'assistant') conv.messages.pop();
  conv.usage = null;
  if (conv.messages.length) generate(conv);
}

// ---- sending and streaming ----------------------------------------------------------------------------------------

function requestFor(conv) {
  const s = conv.settings;
  const messages = [];
  if (s.system?.trim()) messages.push({ role: 'system', content: s.system });
  for (const m of conv.messages) if (m.content) messages.push({ role: m.role, content: m.content });
  const body = { model: conv.model || state.models[0]?.id || 'default', messages };
  for (const k of NUMBERS) if (s[k] !== null && s[k] !== undefined && s[k] !== '') body[k] = s[k];
  return body;
}

async function send(text) {
  if (state.streaming || !text.trim()) return;
  const conv = state.current;
  conv.messages.push({ role: 'user', content: text });
  if (!conv.titleEdited && conv.messages.filter((m) => m.role === 'user').length === 1) conv.title = titleFrom(text);
  $('input').value = '';
  autosize();
  await generate(conv);
}

// Throttled so that a long reply costs at most about a ninth of the time in rendering: the page stays responsive.
let renderQueued = false;
let nextRenderAt = 0;
function queueRender() {
  if (renderQueued) return;
  renderQueued = true;
  const wait = Math.max(0, nextRenderAt - performance.now());
  setTimeout(() => requestAnimationFrame(renderStreaming), wait);
}

function renderStreaming() {
  renderQueued = false;
  const s = state.streaming;
  if (!s || s.conv !== state.current || !s.node) return;
  const box = $('messages');
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
  const t0 = performance.now();
  renderInto(s.node.querySelector('.body'), s.msg.content, { final: false });
  nextRenderAt = performance.now() + 8 * (performance.now() - t0);
  if (atBottom) box.scrollTop = box.scrollHeight;
  renderStatus();
}

async function generate(conv) {
  clearError();
  const msg = { role: 'assistant', content: '' };
  conv.messages.push(msg);
  const controller = new AbortController();
  state.streaming = { conv, msg, controller, node: null, chunks: 0, first: 0, last: 0 };
  setBusy(true);
  await save(conv);
  renderList();
  if (state.current === conv) renderConversation();
  const s = state.streaming;
  let usage = null;
  let lastSave = performance.now();
  try {
    for await (const chunk of state.api.chat(requestFor(conv), controller.signal)) {
      const choice = chunk.choices?.[0];
      if (choice?.delta?.content) {
        const now = performance.now();
        if (!s.chunks) s.first = now;
        s.last = now;
        s.chunks += 1;
        msg.content += choice.delta.content;
        queueRender();
      }
      if (choice?.finish_reason) msg.finish = choice.finish_reason;
      if (chunk.usage) usage = chunk.usage;
      if (chunk.model) msg.model = chunk.model;
      if (performance.now() - lastSave > SAVE_EVERY_MS) { lastSave = performance.now(); save(conv); }
    }
  } catch (e) {
    if (e.name === 'AbortError') {
      msg.stopped = true;
    } else if (e instanceof ApiError && e.kind === 'auth' && !msg.content) {
      conv.messages.pop();
      finishStream();
      await save(conv);
      if (await askForKey()) return generate(conv);
      showError(`${e.message} Set the key under Server, then Retry.`, () => generate(conv));
      return;
    } else {
      msg.error = e instanceof ApiError ? e.message : `Unexpected error: ${e?.message || e}`;
      showError(msg.error, () => regenerate(conv));
    }
  }
  const tokens = usage?.completion_tokens ?? s.chunks;
  const seconds = (s.last - s.first) / 1000;
  msg.stats = { tokens, tps: s.chunks > 1 && seconds > 0 ? (s.chunks - 1) / seconds : null };
  conv.usage = usage;  // null after a stop: the context figure is unknown until the next full reply
  finishStream();
  await save(conv);
}

function finishStream() {
  state.streaming = null;
  setBusy(false);
  renderList();
  renderConversation();
}

function stop() { state.streaming?.controller.abort(); }

function setBusy(busy) {
  $('send').hidden = busy;
  $('stop').hidden = !busy;
  if (!busy && document.activeElement === document.body) $('input').focus();
}

function contextSize() {
  const model = state.models.find((m) => m.id === state.current?.model) || state.models[0];
  const meta = model?.meta || {};
  return meta.n_ctx || meta.n_ctx_train || null;
}

function renderStatus() {
  const s = state.streaming;
  const conv = state.current;
  let speed = '';
  if (s && s.conv === conv) {
    const seconds = (s.last - s.first) / 1000;
    speed = s.chunks > 1 && seconds > 0 ? `${((s.chunks - 1) / seconds).toFixed(1)} tokens/s` : 'waiting for the first token\u2026';
  } else {
    const last = [...conv.messages].reverse().find((m) => m.role === 'assistant' && m.stats?.tps);
    if (last) speed = `last reply ${last.stats.tps.toFixed(1)} tokens/s`;
  }
  $('speed').textContent = speed;
  const used = conv.usage?.total_tokens;
  const size = contextSize();
  let context = '';
  if (used && size) context = `context ${used} / ${size} tokens (${Math.round((100 * used) / size)}%)`;
  else if (used) context = `context ${used} tokens`;
  else if (size) context = `context size ${size} tokens`;
  $('context').textContent = context;
}

// ---- models and the API key ---------------------------------------------------------------------------------------

async function loadModels() {
  try {
    state.models = await state.api.models();
    clearError();
  } catch (e) {
    state.models = [];
    if (e instanceof ApiError && e.kind === 'auth') {
      if (await askForKey()) return loadModels();
      showError(`${e.message} Set the key under Server.`, loadModels);
    } else {
      showError(e instanceof ApiError ? e.message : `Could not list the models: ${e?.message || e}`, loadModels);
    }
  }
  if (!prefs.model && state.models[0]) prefs.model = state.models[0].id;
  renderModelPick();
  renderStatus();
}

function renderModelPick() {
  const pick = $('model');
  const conv = state.current;
  const ids = state.models.map((m) => m.id);
  if (conv && !conv.model) conv.model = ids.includes(prefs.model) ? prefs.model : ids[0] || '';
  const wanted = conv?.model || '';
  const options = ids.map((id) => el('option', { value: id, textContent: id }));
  if (wanted && !ids.includes(wanted)) {
    options.push(el('option', { value: wanted, textContent: `${wanted} (not on the server)` }));
  }
  if (!options.length) options.push(el('option', { value: '', textContent: 'no model' }));
  pick.replaceChildren(...options);
  pick.value = wanted;
}

let keyPrompt = null;
function askForKey() {
  keyPrompt ??= promptForKey().finally(() => { keyPrompt = null; });
  return keyPrompt;
}

async function promptForKey() {
  const key = await ask({ title: 'API key needed', text: `The server at ${state.api.base} asks for an API key ` +
    '(hogar serve --api-key). It is kept in this browser.', label: 'API key', type: 'password', ok: 'Use key' });
  if (!key) return false;
  prefs.key = key;
  state.api = new Api(prefs.base, prefs.key);
  return true;
}

// ---- per-conversation settings ------------------------------------------------------------------------------------

function renderSettings() {
  const s = { ...DEFAULTS, ...state.current.settings };
  $('s-system').value = s.system || '';
  for (const k of NUMBERS) $(`s-${k}`).value = s[k] ?? '';
}

function readSetting(k) {
  const input = $(`s-${k}`);
  if (input.value.trim() === '') return null;
  const v = Number(input.value);
  if (!Number.isFinite(v) || !input.checkValidity()) return undefined;
  return INTEGERS.has(k) ? Math.trunc(v) : v;
}

async function settingsChanged() {
  const conv = state.current;
  conv.settings.system = $('s-system').value;
  for (const k of NUMBERS) {
    const v = readSetting(k);
    if (v !== undefined) conv.settings[k] = v;
  }
  if (isSaved(conv)) await save(conv);
}

// ---- export / import ----------------------------------------------------------------------------------------------

function exportAll() {
  const blob = new Blob([JSON.stringify(exportDocument(state.conversations), null, 2)], { type: 'application/json' });
  const a = el('a', { href: URL.createObjectURL(blob), download: `hogar-chats-${new Date().toISOString().slice(0, 10)}.json` });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}

async function importFile(file) {
  let incoming;
  try {
    incoming = parseImport(await file.text());
  } catch (e) {
    showError(`Could not import ${file.name}: ${e.message}.`);
    return;
  }
  const byId = new Map(state.conversations.map((c) => [c.id, c]));
  let added = 0;
  let same = 0;
  let failed = '';
  for (const conv of incoming) {
    const existing = byId.get(conv.id);
    if (existing && JSON.stringify(existing.messages) === JSON.stringify(conv.messages)) { same += 1; continue; }
    if (existing) conv.id = newId();  // never overwrite a chat that differs: keep both
    try {
      await state.store.put(conv);
    } catch (e) {
      failed = `${e?.message || e}`;
      break;
    }
    state.conversations.push(conv);
    byId.set(conv.id, conv);
    tell('saved', conv.id);
    added += 1;
  }
  state.conversations.sort((a, b) => b.updated - a.updated);
  renderList();
  if (failed) showError(`Imported ${added} conversations, then the browser refused to store more (${failed}).`);
  else showNotice(`Imported ${added} conversation${added === 1 ? '' : 's'}${same ? ` (${same} already here)` : ''}.`);
}

async function heard({ type, id }) {
  if (state.streaming?.conv.id === id) return;  // this tab is the one writing it
  const index = state.conversations.findIndex((c) => c.id === id);
  const old = state.conversations[index];
  if (type === 'deleted') {
    if (!old) return;
    old.deleted = true;
    state.conversations.splice(index, 1);
    if (state.current === old) open(state.conversations[0] || draft());
    else renderList();
    return;
  }
  const fresh = await state.store.get(id);
  if (!fresh) return;
  if (old) state.conversations[index] = fresh;
  else state.conversations.push(fresh);
  state.conversations.sort((a, b) => b.updated - a.updated);
  if (old && state.current === old) {
    state.current = fresh;
    if (!$('messages').querySelector('.edit')) renderConversation();
    if (!$('settings').contains(document.activeElement)) renderSettings();
  }
  renderList();
}

// ---- the drawer at phone width ------------------------------------------------------------------------------------

function openSidebar() {
  $('sidebar').classList.add('open');
  $('main').inert = true;
  $('scrim').hidden = false;
  $('open-sidebar').setAttribute('aria-expanded', 'true');
  ($('sidebar').querySelector('[aria-current]') || $('new-chat')).focus();
}

function closeSidebar() {
  if (!$('sidebar').classList.contains('open')) return;
  $('sidebar').classList.remove('open');
  $('main').inert = false;
  $('scrim').hidden = true;
  $('open-sidebar').setAttribute('aria-expanded', 'false');
}

const narrow = window.matchMedia('(max-width: 760px)');
function placeholder() {
  $('input').placeholder = narrow.matches ? 'Message' : 'Message (Enter sends, Shift+Enter: new line)';
}

function autosize() {
  const input = $('input');
  input.style.height = 'auto';
  input.style.height = `${input.scrollHeight + 2}px`;
}

// ---- wiring -------------------------------------------------------------------------------------------------------

function wire() {
  $('send-form').addEventListener('submit', (e) => { e.preventDefault(); send($('input').value); });
  $('input').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); send($('input').value); }
  });
  $('input').addEventListener('input', autosize);
  narrow.addEventListener('change', placeholder);
  placeholder();
  $('stop').addEventListener('click', stop);
  document.addEventListener('keydown', (e) => {
    if (e.key !== 'Escape') return;
    const at = document.activeElement;
    const inChat = at === document.body || at === $('input') || at === $('stop') || $('messages').contains(at);
    if (state.streaming && inChat && !document.querySelector('dialog[open]')) stop();
    else if ($('sidebar').classList.contains('open')) { closeSidebar(); $('open-sidebar').focus(); }
  });
  $('new-chat').addEventListener('click', newChat);
  $('search').addEventListener('input', () => { state.filter = $('search').value; renderList(); });
  $('open-sidebar').addEventListener('click', openSidebar);
  $('close-sidebar').addEventListener('click', () => { closeSidebar(); $('open-sidebar').focus(); });
  $('scrim').addEventListener('click', closeSidebar);
  $('toggle-settings').addEventListener('click', () => {
    const panel = $('settings');
    panel.hidden = !panel.hidden;
    $('toggle-settings').setAttribute('aria-expanded', String(!panel.hidden));
    if (!panel.hidden) $('s-system').focus();
  });
  for (const id of ['s-system', ...NUMBERS.map((k) => `s-${k}`)]) $(id).addEventListener('change', settingsChanged);
  $('s-reset').addEventListener('click', () => {
    state.current.settings = { ...DEFAULTS };
    renderSettings();
    settingsChanged();
  });
  $('model').addEventListener('change', () => {
    state.current.model = $('model').value;
    prefs.model = $('model').value;
    if (isSaved(state.current)) save(state.current);
    renderStatus();
  });
  if (tabs) tabs.onmessage = (e) => heard(e.data);
  window.addEventListener('pagehide', () => {
    const s = state.streaming;
    if (!s) return;
    s.msg.stopped = true;
    save(s.conv);
  });
  $('banner-close').addEventListener('click', clearError);
  $('banner-retry').addEventListener('click', () => { const again = retryAction; clearError(); again?.(); });
  $('messages').addEventListener('click', (e) => {
    const button = e.target.closest('.copy-code');
    if (button) flash(button, copyText(button.closest('.code').querySelector('code').textContent.replace(/\n$/, '')));
  });
  $('export').addEventListener('click', exportAll);
  $('import').addEventListener('click', () => $('import-file').click());
  $('import-file').addEventListener('change', () => {
    const file = $('import-file').files[0];
    $('import-file').value = '';
    if (file) importFile(file);
  });
  $('ask-cancel').addEventListener('click', () => $('ask').close('cancel'));
  const server = $('server-dialog');
  $('open-server').addEventListener('click', () => {
    $('server-base').value = prefs.base;
    $('server-key').value = prefs.key;
    server.showModal();
  });
  $('server-default').addEventListener('click', () => { $('server-base').value = new URL('v1', location.href).href; });
  $('server-cancel').addEventListener('click', () => server.close('cancel'));
  server.addEventListener('close', () => {
    if (server.returnValue !== 'ok') return;
    const base = $('server-base').value.trim();
    prefs.base = base === new URL('v1', location.href).href ? '' : base;
    prefs.key = $('server-key').value;
    state.api = new Api(prefs.base, prefs.key);
    loadModels();
  });
}

async function main() {
  state.store = await Store.open();
  if (!state.store.persistent) showError('This browser gives the page no storage: conversations will be lost on reload.');
  state.api = new Api(prefs.base, prefs.key);
  try {
    state.conversations = (await state.store.all()).sort((a, b) => b.updated - a.updated);
  } catch (e) {
    showError(`Could not read the saved conversations: ${e?.message || e}`);
  }
  open(state.conversations.find((c) => c.id === prefs.open) || draft());
  wire();
  document.documentElement.dataset.ready = 'true';
  await loadModels();
}

main();
