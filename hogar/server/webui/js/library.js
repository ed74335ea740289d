// The Models view: the models on the server's machine (/v1/models), which are loaded, pulling one from the Hub
// (/v1/pull, its progress streamed, Cancel keeps the partial file for the next pull) and deleting a pulled one.
import { ApiError } from './api.js';
import { loadModels } from './models.js';
import { state } from './state.js';
import { $, ask, el } from './ui.js';

let pulling = null; // the AbortController of the running pull

const mib = (n) => `${(n / 2 ** 20).toFixed(1)} MiB`;

async function fetchLibrary() {
  const response = await state.api._fetch('/models');
  return response.json();
}

export async function renderLibrary() {
  let body;
  try {
    body = await fetchLibrary();
  } catch (e) {
    $('models-note').textContent = e instanceof ApiError ? e.message : `Could not list the models: ${e?.message || e}`;
    $('model-list').replaceChildren();
    return;
  }
  const models = Array.isArray(body?.data) ? body.data : [];
  const library = body?.library === true;
  $('pull-form').hidden = !library;
  $('models-note').textContent = library
    ? 'Each model loads when a conversation uses it.'
    : 'This server serves one model; start `hogar serve` without a model to serve and pull several.';
  $('model-list').replaceChildren(...models.map((m) => {
    const info = [m.size ? mib(m.size) : '', m.source || '', m.meta?.architecture || ''].filter(Boolean).join(' · ');
    const item = el('li', {},
      el('span', { className: 'info' }, el('span', { className: 'name', textContent: m.id }), el('br'),
        el('span', { className: 'muted', textContent: info })));
    item.dataset.id = m.id;
    if (m.loaded) item.append(el('span', { className: 'badge', textContent: 'loaded' }));
    if (m.deletable) {
      const button = el('button', { type: 'button', className: 'danger', textContent: 'Delete' });
      button.setAttribute('aria-label', `Delete ${m.id}`);
      button.addEventListener('click', () => remove(m.id));
      item.append(button);
    }
    return item;
  }));
}

async function remove(id) {
  const ok = await ask({ title: `Delete ${id}?`, text: 'Its file is deleted from this machine.', ok: 'Delete',
    danger: true });
  if (!ok) return;
  try {
    await state.api._fetch(`/models/${encodeURIComponent(id)}`, { method: 'DELETE' });
    $('pull-status').textContent = `Deleted ${id}.`;
  } catch (e) {
    $('pull-status').textContent = e?.message || String(e);
  }
  await renderLibrary();
  await loadModels();
}

async function pull(ref) {
  const controller = new AbortController();
  pulling = controller;
  $('pull-go').disabled = true;
  $('pull-cancel').hidden = false;
  $('pull-progress').hidden = false;
  $('pull-progress').removeAttribute('value');
  $('pull-status').textContent = `Pulling ${ref}…`;
  try {
    const response = await state.api._fetch('/pull', { method: 'POST', body: JSON.stringify({ model: ref }),
      signal: controller.signal });
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    let last = null;
    for (;;) {
      const part = await reader.read();
      if (part.done) break;
      buffer += part.value;
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const line = buffer.slice(0, end).replace(/^data:\s*/, '');
        buffer = buffer.slice(end + 2);
        last = JSON.parse(line);
        if (last.total) {
          $('pull-progress').value = last.completed / last.total;
          $('pull-status').textContent = `Pulling ${ref}: ${mib(last.completed)} of ${mib(last.total)}`;
        }
      }
    }
    if (last?.status === 'success') $('pull-status').textContent = `Pulled ${last.model}.`;
    else $('pull-status').textContent = last?.error?.message || 'The pull stopped.';
  } catch (e) {
    $('pull-status').textContent = e.name === 'AbortError'
      ? 'Cancelled: the part downloaded is kept, and the next pull resumes it.'
      : (e?.message || String(e));
  } finally {
    pulling = null;
    $('pull-go').disabled = false;
    $('pull-cancel').hidden = true;
    $('pull-progress').hidden = true;
  }
  await renderLibrary();
  await loadModels();
}

export function wireLibrary() {
  const dialog = $('models-dialog');
  $('open-models').addEventListener('click', () => { dialog.showModal(); renderLibrary(); });
  $('models-close').addEventListener('click', () => dialog.close());
  $('pull-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const ref = $('pull-ref').value.trim();
    if (ref && !pulling) pull(ref);
  });
  $('pull-cancel').addEventListener('click', () => pulling?.abort());
}
