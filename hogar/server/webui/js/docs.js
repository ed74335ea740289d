// Documents a conversation answers from. Attached files are uploaded (POST /files, with byte progress), added to the
// conversation's vector store (made on the first attach), and polled until the server has indexed them; a chip per file
// says where each is. Or the conversation reads an existing collection, picked in its settings. What the page made on
// the server it also deletes: a removed chip's upload, and a deleted conversation's vector store and uploads.
import { ApiError } from './api.js';
import { isSaved, renderList, save } from './conversations.js';
import { state } from './state.js';
import { newId } from './store.js';
import { $, el, showError } from './ui.js';

const POLL_MS = 400;
const RETRY_MS = 2000;
const GIVE_UP_MS = 5 * 60_000;  // a server away this long while a file is indexing: the chip says so
const STATES = { uploading: 'uploading', indexing: 'indexing\u2026', done: 'ready', failed: 'failed' };

const uploads = new Map();   // entry key -> { controller, progress }: the uploads this tab is sending
const polling = new Set();   // entry keys this tab is polling
const creating = new Map();  // conversation id -> promise of its new vector store
const chips = new Map();     // entry key -> its <li>, kept across renders so that focus stays put

// Another tab's write replaces the conversation object (conversations.heard): always work on the one held now.
const held = (id) => (state.current?.id === id ? state.current : state.conversations.find((c) => c.id === id));
const live = (id) => { const conv = held(id); return conv && !conv.deleted ? conv : null; };
const docsOf = (conv) => (conv.docs ??= { store: null, picked: false, files: [] });
const reason = (e) => (e instanceof ApiError ? e.detail : e?.message || String(e));
const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });
const entryOf = (convId, key) => live(convId)?.docs?.files.find((f) => f.key === key) || null;
// Every id the page puts into a URL is encoded, whatever its origin.
const storePath = (id) => `/vector_stores/${encodeURIComponent(id)}`;
const storeFilePath = (storeId, fileId) => `${storePath(storeId)}/files/${encodeURIComponent(fileId)}`;
const filePath = (id) => `/files/${encodeURIComponent(id)}`;

// DELETE, already gone counting as done: '' or what went wrong.
async function discard(path) {
  try {
    await state.api._fetch(path, { method: 'DELETE' });
    return '';
  } catch (e) {
    return e.status === 404 ? '' : reason(e);
  }
}

export function fileSearchTools(conv) {
  const id = conv.docs?.store?.id;
  return id ? [{ type: 'file_search', vector_store_ids: [id] }] : null;
}

async function update(convId, key, patch) {
  const conv = live(convId);
  const entry = entryOf(convId, key);
  if (!entry) return null;  // removed meanwhile
  Object.assign(entry, patch);
  if (conv === state.current) renderAttachments();
  await save(conv);
  return entry;
}

function storeFor(conv) {
  const docs = docsOf(conv);
  if (docs.store) return Promise.resolve(docs.store);
  if (!creating.has(conv.id)) {
    const made = state.api.json('/vector_stores', { method: 'POST', body: { name: `chat: ${conv.title}` } })
      .then((vs) => {
        const holder = docsOf(live(conv.id) || conv);
        holder.store = { id: vs.id, name: vs.name || '' };
        holder.picked = false;
        holder.made = true;  // this page made it, so deleting the conversation deletes it
        return holder.store;
      })
      .finally(() => creating.delete(conv.id));
    creating.set(conv.id, made);
  }
  return creating.get(conv.id);
}

export async function attachFiles(files) {
  const list = [...files];
  if (!list.length) return;
  const conv = state.current;
  const entries = list.map((f) => ({ key: newId(), file_id: '', filename: f.name, bytes: f.size, status: 'uploading',
    error: '', uploaded: true }));
  docsOf(conv).files.push(...entries);
  const wasSaved = isSaved(conv);
  renderAttachments();
  await save(conv);  // the chat is kept from its first attachment, so the vector store is not lost on reload
  if (!wasSaved) renderList();
  await Promise.all(entries.map((entry, i) => attachOne(conv.id, entry.key, list[i])));
}

async function attachOne(convId, key, file) {
  const controller = new AbortController();
  uploads.set(key, { controller, progress: 0 });
  try {
    const conv = live(convId);
    if (!conv) return;
    const store = await storeFor(conv);
    const uploaded = await state.api.upload(file, { signal: controller.signal,
      onProgress: (p) => showProgress(key, p) });
    uploads.delete(key);
    const entry = await update(convId, key, { file_id: uploaded.id, filename: uploaded.filename || file.name,
      status: 'indexing' });
    if (!entry) {  // the chip or the conversation went while the bytes were on their way
      await discard(filePath(uploaded.id));
      return;
    }
    const added = await state.api.json(`${storePath(store.id)}/files`, { method: 'POST',
      body: { file_id: uploaded.id } });
    await settle(convId, key, store.id, added);
  } catch (e) {
    uploads.delete(key);
    if (e.name !== 'AbortError') await update(convId, key, { status: 'failed', error: reason(e) });
  }
}

// Polls the vector store file until the server has indexed it or given up on it.
async function settle(convId, key, storeId, first) {
  if (polling.has(key)) return;
  polling.add(key);
  let file = first;
  let awaySince = 0;
  try {
    while (file.status === 'in_progress') {
      await sleep(awaySince ? RETRY_MS : POLL_MS);
      const entry = entryOf(convId, key);
      if (!entry || entry.status !== 'indexing') return;
      try {
        file = await state.api.json(storeFilePath(storeId, entry.file_id));
        awaySince = 0;
      } catch (e) {
        if (!(e instanceof ApiError && e.kind === 'unreachable')) throw e;
        awaySince ||= Date.now();  // a restarting server finishes the file when it is back: keep asking a while
        if (Date.now() - awaySince > GIVE_UP_MS) throw e;
      }
    }
    if (file.status === 'completed') await update(convId, key, { status: 'done', error: '' });
    else await update(convId, key, { status: 'failed', error: file.last_error?.message || `indexing ${file.status}` });
  } catch (e) {
    await update(convId, key, { status: 'failed', error: reason(e) });
  } finally {
    polling.delete(key);
  }
}

// On opening a conversation: keep following files still indexing; an upload this tab no longer holds was cut off.
export function resumeDocs(conv) {
  const docs = conv.docs;
  if (!docs?.files.length) return;
  for (const entry of docs.files) {
    if (entry.status === 'uploading' && !uploads.has(entry.key)) {
      update(conv.id, entry.key, { status: 'failed', error: 'the upload was interrupted: attach the file again' });
    } else if (entry.status === 'indexing' && entry.file_id && docs.store) {
      settle(conv.id, entry.key, docs.store.id, { status: 'in_progress' });
    }
  }
}

async function remove(key) {
  const conv = state.current;
  const docs = conv.docs;
  const index = docs?.files.findIndex((f) => f.key === key) ?? -1;
  if (index < 0) return;
  const [entry] = docs.files.splice(index, 1);
  uploads.get(key)?.controller.abort();
  renderAttachments();
  const next = $('attachments').querySelectorAll('.chip button')[Math.min(index, docs.files.length - 1)];
  (next || $('attach')).focus();
  await save(conv);
  if (!entry.file_id || entry.status === 'uploading') return;
  const problems = [docs.store ? await discard(storeFilePath(docs.store.id, entry.file_id)) : ''];
  if (entry.uploaded) problems.push(await discard(filePath(entry.file_id)));  // the page's own upload goes too
  const problem = problems.find(Boolean);
  if (problem) showError(`Could not remove ${entry.filename} from the documents: ${problem}`);
}

// A deleted conversation: stop its uploads, delete the vector store it made (never a picked collection) and, with it,
// the files it uploaded there.
export async function forgetDocs(conv) {
  for (const entry of conv.docs?.files || []) uploads.get(entry.key)?.controller.abort();
  await creating.get(conv.id)?.catch(() => {});  // a store still being made is deleted too
  const docs = conv.docs;
  if (!docs?.made || !docs.store) return;
  const problems = [await discard(storePath(docs.store.id))];
  for (const entry of docs.files.filter((f) => f.uploaded && f.file_id)) {
    problems.push(await discard(filePath(entry.file_id)));
  }
  const problem = problems.find(Boolean);
  if (problem) showError(`Could not delete the documents of \u201c${conv.title}\u201d from the server: ${problem}`);
}

function showProgress(key, fraction) {
  const up = uploads.get(key);
  if (up) up.progress = fraction;
  const chip = chips.get(key);
  if (!chip) return;
  chip.querySelector('progress').value = fraction;
  chip.querySelector('.state').textContent = `uploading ${Math.round(fraction * 100)}%`;
}

function chipFor(entry) {
  let chip = chips.get(entry.key);
  if (!chip) {
    const progress = el('progress', { max: 1, value: 0 });
    progress.setAttribute('aria-label', `Upload of ${entry.filename}`);
    const drop = el('button', { type: 'button', className: 'icon', textContent: '\u2715' });
    drop.setAttribute('aria-label', `Remove ${entry.filename}`);
    drop.addEventListener('click', () => remove(entry.key));
    chip = el('li', { className: 'chip' }, el('span', { className: 'name' }), progress,
      el('span', { className: 'state' }), drop);
    chip.dataset.key = entry.key;
    chips.set(entry.key, chip);
  }
  chip.dataset.status = entry.status;
  chip.querySelector('.name').textContent = entry.filename;
  chip.title = entry.error ? `${entry.filename}: ${entry.error}` : entry.filename;
  const progress = chip.querySelector('progress');
  progress.hidden = entry.status !== 'uploading';
  const up = uploads.get(entry.key);
  let text = STATES[entry.status] || entry.status;
  if (entry.status === 'uploading' && up) {
    progress.value = up.progress;
    text = `uploading ${Math.round(up.progress * 100)}%`;
  }
  if (entry.status === 'failed' && entry.error) text = `failed: ${entry.error}`;
  chip.querySelector('.state').textContent = text;
  return chip;
}

export function renderAttachments() {
  const docs = state.current?.docs;
  const files = docs?.files || [];
  const shown = new Set(files.map((f) => f.key));
  for (const key of chips.keys()) if (!shown.has(key)) chips.delete(key);
  const items = files.map(chipFor);
  if (docs?.store && docs.picked) {
    const label = el('li', { className: 'chip collection' },
      el('span', { className: 'state', textContent: 'Answers from' }),
      el('span', { className: 'name', textContent: docs.store.name || docs.store.id }));
    items.unshift(label);
  }
  $('attachments').replaceChildren(...items);
  $('attachments').hidden = items.length === 0;
}

// ---- the Documents setting: an existing collection (vector store), or none ------------------------------------------

let storesListed = null;  // the last list from the server, or an error message

async function listStores() {
  try {
    const body = await state.api.json('/vector_stores?limit=100');
    storesListed = Array.isArray(body?.data) ? body.data : [];
  } catch (e) {
    storesListed = reason(e);
  }
  renderDocsSetting();
}

export function renderDocsSetting() {
  const pick = $('s-docs');
  const current = state.current?.docs?.store || null;
  const options = [el('option', { value: '', textContent: 'None' })];
  const stores = Array.isArray(storesListed) ? storesListed : [];
  for (const vs of stores) {
    const n = vs.file_counts?.total ?? 0;
    options.push(el('option', { value: vs.id, textContent: `${vs.name || vs.id} (${n} document${n === 1 ? '' : 's'})` }));
  }
  if (current && !stores.some((vs) => vs.id === current.id)) {
    options.push(el('option', { value: current.id, textContent: current.name || current.id }));
  }
  pick.replaceChildren(...options);
  pick.value = current?.id || '';
  $('s-docs-note').textContent = typeof storesListed === 'string' ? `Could not list the collections: ${storesListed}`
    : '';
}

// The chips of a collection picked here: its files as the server has them.
async function loadStoreFiles(conv, store) {
  const [inStore, files] = await Promise.all([
    state.api.json(`${storePath(store.id)}/files?limit=100`), state.api.json('/files')]);
  const byId = new Map((files?.data || []).map((f) => [f.id, f]));
  const status = { completed: 'done', in_progress: 'indexing' };
  docsOf(conv).files = (inStore?.data || []).map((f) => ({ key: newId(), file_id: f.id,
    filename: byId.get(f.id)?.filename || f.id, bytes: byId.get(f.id)?.bytes || 0, status: status[f.status] || 'failed',
    error: f.last_error?.message || '' }));
}

async function pickStore() {
  const conv = state.current;
  const id = $('s-docs').value;
  if (id === (conv.docs?.store?.id || '')) return;
  const listed = Array.isArray(storesListed) ? storesListed.find((vs) => vs.id === id) : null;
  conv.docs = { store: id ? { id, name: listed?.name || '' } : null, picked: Boolean(id), files: [] };
  if (id) {
    try {
      await loadStoreFiles(conv, conv.docs.store);
    } catch (e) {
      showError(`Could not list the files of ${listed?.name || id}: ${reason(e)}`);
    }
  }
  renderAttachments();
  resumeDocs(conv);
  if (isSaved(conv) || id) { await save(conv); renderList(); }
}

// The store made for a chat is named after it: "chat: <title>".
export function renameStore(conv) {
  const store = conv.docs?.store;
  if (!store || !conv.docs.made || store.name === `chat: ${conv.title}`) return;
  store.name = `chat: ${conv.title}`;
  state.api.json(storePath(store.id), { method: 'POST', body: { name: store.name } }).catch(() => {});
}

function wireDrop() {
  const zone = $('main');
  const hasFiles = (e) => [...(e.dataTransfer?.types || [])].includes('Files');
  zone.addEventListener('dragover', (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = 'copy';
    $('messages').classList.add('dropping');
  });
  zone.addEventListener('dragleave', (e) => {
    if (!zone.contains(e.relatedTarget)) $('messages').classList.remove('dropping');
  });
  zone.addEventListener('drop', (e) => {
    $('messages').classList.remove('dropping');
    if (!hasFiles(e)) return;
    e.preventDefault();
    attachFiles(e.dataTransfer.files);
  });
}

export function wireDocs() {
  $('attach').addEventListener('click', () => $('attach-file').click());
  $('attach-file').addEventListener('change', () => {
    const files = [...$('attach-file').files];
    $('attach-file').value = '';
    attachFiles(files);
  });
  wireDrop();
  $('s-docs').addEventListener('change', pickStore);
  $('s-docs').addEventListener('focus', listStores);  // asked only when wanted: listing opens the server's library
}
