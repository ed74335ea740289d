// The conversation list: new, open, rename, delete, search, export and import, and keeping tabs in step.
import { renderConversation } from './chat.js';
import { forgetDocs, renameStore, renderAttachments, renderDocsSetting, resumeDocs } from './docs.js';
import { renderSettings } from './settings.js';
import { DEFAULTS, prefs, state, tell } from './state.js';
import { exportDocument, newId, parseImport } from './store.js';
import { $, ask, closeSidebar, el, showError, showNotice, autosize } from './ui.js';

const drafts = new Map();  // conversation id -> text typed but not sent

export function draft(from = null) {
  const now = Date.now();
  return { id: newId(), title: 'New chat', titleEdited: false, created: now, updated: now,
    model: from?.model || prefs.model, settings: { ...DEFAULTS, ...from?.settings }, messages: [], usage: null };
}

export const isSaved = (conv) => state.conversations.includes(conv);

export async function save(conv) {
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

export function titleFrom(text) {
  const line = text.trim().split('\n')[0].replace(/\s+/g, ' ');
  return line.length > 48 ? `${line.slice(0, 47)}\u2026` : line || 'New chat';
}

export function open(conv) {
  if (state.current) drafts.set(state.current.id, $('input').value);
  state.current = conv;
  prefs.open = isSaved(conv) ? conv.id : '';
  $('input').value = drafts.get(conv.id) || '';
  autosize();
  renderList();
  renderConversation({ toBottom: true });
  renderSettings();
  renderDocsSetting();
  renderAttachments();
  resumeDocs(conv);
  closeSidebar();
}

export function newChat() {
  const here = state.current;
  if (here && !isSaved(here) && !here.messages.length) open(here);
  else open(draft(here));  // a new chat starts with the settings and model of the one you were in
  $('input').focus();
}

async function rename(conv) {
  const title = await ask({ title: 'Rename conversation', label: 'Title', value: conv.title, ok: 'Rename' });
  if (title === null || !title.trim()) return;
  conv.title = title.trim();
  conv.titleEdited = true;
  renameStore(conv);
  await save(conv);
  renderList();
  if (conv === state.current) $('title').textContent = conv.title;
  $('conversations').querySelector('li.current .rename')?.focus();
}

async function remove(conv) {
  const yes = await ask({ title: 'Delete conversation?', text: `\u201c${conv.title}\u201d will be deleted from this ` +
    'browser. Export first if you want to keep a copy.', ok: 'Delete', danger: true });
  if (!yes) return;
  conv.deleted = true;
  if (state.streaming?.conv === conv) state.streaming.controller.abort();
  state.conversations = state.conversations.filter((c) => c !== conv);
  try {
    await state.store.delete(conv.id);
    tell('deleted', conv.id);
    forgetDocs(conv);  // its vector store and uploads on the server: only this tab deletes them
  } catch (e) {
    showError(`Could not delete: ${e?.message || e}`);
  }
  if (state.current === conv) open(state.conversations[0] || draft(conv));
  else renderList();
  ($('conversations').querySelector('.open') || $('new-chat')).focus();
}

function matches(conv, needle) {
  if (!needle) return true;
  if (conv.title.toLowerCase().includes(needle)) return true;
  return conv.messages.some((m) => m.content.toLowerCase().includes(needle));
}

export function renderList() {
  const list = $('conversations');
  const needle = state.filter.trim().toLowerCase();
  const shown = state.conversations.filter((c) => matches(c, needle));
  list.replaceChildren(...shown.map((conv) => {
    const replying = state.streaming?.conv === conv;
    const when = replying ? 'replying\u2026'
      : new Date(conv.updated).toLocaleString([], { dateStyle: 'short', timeStyle: 'short' });
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
    const classes = [conv === state.current ? 'current' : '', replying ? 'replying' : ''].join(' ').trim();
    return el('li', { className: classes }, openBtn, renameBtn, deleteBtn);
  }));
  const none = $('no-conversations');
  none.hidden = shown.length > 0;
  none.textContent = needle ? 'No conversation matches.' : 'No conversations yet.';
}

export function exportAll() {
  const blob = new Blob([JSON.stringify(exportDocument(state.conversations), null, 2)], { type: 'application/json' });
  const name = `hogar-chats-${new Date().toISOString().slice(0, 10)}.json`;
  const a = el('a', { href: URL.createObjectURL(blob), download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}

const sameMessages = (a, b) => a.length === b.length &&
  a.every((m, i) => m.role === b[i].role && m.content === b[i].content);

export async function importFile(file) {
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
    if (existing && sameMessages(existing.messages, conv.messages)) { same += 1; continue; }
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

// Another tab wrote or deleted a conversation.
export async function heard({ type, id }) {
  if (state.streaming?.conv.id === id) return;  // this tab is the one writing it
  const index = state.conversations.findIndex((c) => c.id === id);
  const old = state.conversations[index];
  if (type === 'deleted') {
    if (!old) return;
    old.deleted = true;
    state.conversations.splice(index, 1);
    if (state.current === old) open(state.conversations[0] || draft(old));
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
    if (!$('settings').contains(document.activeElement)) { renderSettings(); renderDocsSetting(); }
    renderAttachments();
  }
  renderList();
}
