// The model picker (from /v1/models), the context size it tells, and the API key.
import { Api, ApiError } from './api.js';
import { renderStatus } from './chat.js';
import { isSaved, save } from './conversations.js';
import { prefs, state } from './state.js';
import { $, ask, clearError, el, showError } from './ui.js';

export async function loadModels() {
  try {
    state.models = await state.api.models();
    state.modelsError = false;
    clearError();
  } catch (e) {
    state.models = [];
    state.modelsError = true;
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

export function renderModelPick() {
  const pick = $('model');
  const conv = state.current;
  const ids = state.models.map((m) => m.id);
  if (conv && !conv.model) conv.model = ids.includes(prefs.model) ? prefs.model : ids[0] || '';
  const wanted = conv?.model || '';
  const options = ids.map((id) => el('option', { value: id, textContent: id }));
  if (wanted && !ids.includes(wanted)) {
    const why = state.modelsError ? 'server unreachable' : 'not on the server';
    options.push(el('option', { value: wanted, textContent: `${wanted} (${why})` }));
  }
  if (!options.length) options.push(el('option', { value: '', textContent: 'no model' }));
  pick.replaceChildren(...options);
  pick.value = wanted;
}

export function modelChanged() {
  state.current.model = $('model').value;
  prefs.model = $('model').value;
  if (isSaved(state.current)) save(state.current);
  renderStatus();
}

export function contextSize() {
  const model = state.models.find((m) => m.id === state.current?.model) || state.models[0];
  const meta = model?.meta || {};
  return meta.n_ctx || meta.n_ctx_train || null;
}

// Several requests can meet a 401 at once: they share one question.
let keyPrompt = null;
export function askForKey() {
  keyPrompt ??= promptForKey().finally(() => { keyPrompt = null; });
  return keyPrompt;
}

async function promptForKey() {
  const why = prefs.key ? 'refused the API key this browser gave it' : 'asks for an API key (hogar serve --api-key)';
  const key = await ask({ title: 'API key needed', text: `The server at ${state.api.base} ${why}. The key is kept ` +
    'in this browser.', label: 'API key', type: 'password', ok: 'Use key' });
  if (!key) return false;
  prefs.key = key;
  state.api = new Api(prefs.base, prefs.key);
  return true;
}
