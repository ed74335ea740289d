// The chat page's start: open the store, show the last conversation, wire the controls, list the models.
import { Api } from './api.js';
import { copyCode, saveOnLeave, send, stop } from './chat.js';
import { wireDocs } from './docs.js';
import { sourcesClick } from './sources.js';
import { draft, exportAll, heard, importFile, newChat, open, renderList } from './conversations.js';
import { wireLibrary } from './library.js';
import { loadModels, modelChanged } from './models.js';
import { wireSettings } from './settings.js';
import { prefs, state, tabs } from './state.js';
import { Store } from './store.js';
import { $, autosize, clearError, closeSidebar, openSidebar, retry, showError } from './ui.js';

const narrow = window.matchMedia('(max-width: 760px)');
function placeholder() {
  $('input').placeholder = narrow.matches ? 'Message' : 'Message (Enter sends, Shift+Enter: new line)';
}

// Escape stops the reply when you are in its conversation (message box, messages, Stop); else it closes the drawer.
function escape(e) {
  if (e.key !== 'Escape' || document.querySelector('dialog[open]')) return;
  const at = document.activeElement;
  const inChat = at === document.body || at === $('input') || at === $('stop') || $('messages').contains(at);
  if (state.streaming?.conv === state.current && inChat) stop();
  else if (closeSidebar()) $('open-sidebar').focus();
}

function wireServerDialog() {
  const dialog = $('server-dialog');
  $('open-server').addEventListener('click', () => {
    $('server-base').value = prefs.base;
    $('server-key').value = prefs.key;
    dialog.showModal();
  });
  $('server-default').addEventListener('click', () => { $('server-base').value = prefs.thisServer(); });
  $('server-cancel').addEventListener('click', () => dialog.close('cancel'));
  dialog.addEventListener('close', () => {
    if (dialog.returnValue !== 'ok') return;
    prefs.base = $('server-base').value.trim();
    prefs.key = $('server-key').value;
    state.api = new Api(prefs.base, prefs.key);
    loadModels();
  });
}

function wire() {
  $('send-form').addEventListener('submit', (e) => { e.preventDefault(); send($('input').value); });
  $('input').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); send($('input').value); }
  });
  $('input').addEventListener('input', autosize);
  narrow.addEventListener('change', placeholder);
  placeholder();
  $('stop').addEventListener('click', stop);
  document.addEventListener('keydown', escape);
  $('new-chat').addEventListener('click', newChat);
  $('search').addEventListener('input', () => { state.filter = $('search').value; renderList(); });
  $('open-sidebar').addEventListener('click', openSidebar);
  $('close-sidebar').addEventListener('click', () => { closeSidebar(); $('open-sidebar').focus(); });
  $('scrim').addEventListener('click', closeSidebar);
  wireSettings();
  $('model').addEventListener('change', modelChanged);
  if (tabs) tabs.onmessage = (e) => heard(e.data);
  window.addEventListener('pagehide', saveOnLeave);
  $('banner-close').addEventListener('click', clearError);
  $('banner-retry').addEventListener('click', retry);
  $('messages').addEventListener('click', copyCode);
  $('messages').addEventListener('click', sourcesClick);
  $('export').addEventListener('click', exportAll);
  $('import').addEventListener('click', () => $('import-file').click());
  $('import-file').addEventListener('change', () => {
    const file = $('import-file').files[0];
    $('import-file').value = '';
    if (file) importFile(file);
  });
  $('ask-cancel').addEventListener('click', () => $('ask').close('cancel'));
  wireServerDialog();
  wireLibrary();
  wireDocs();
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
