// The open conversation: its messages, sending, the streamed reply (one at a time), Stop, Regenerate, Edit.
import { ApiError } from './api.js';
import { renderList, save, titleFrom } from './conversations.js';
import { fileSearchTools, renameStore } from './docs.js';
import { jsonMode, jsonText, responseFormat } from './jsonmode.js';
import { copyText, renderCodeInto, renderInto } from './markdown.js';
import { askForKey, contextSize, loadModels, renderModelPick } from './models.js';
import { state } from './state.js';
import { schemaReady } from './settings.js';
import { linkCitations, sourcesNode } from './sources.js';
import { SETTINGS, cleanSources } from './store.js';
import { $, ask, autosize, clearError, el, flash, showError, showNotice } from './ui.js';

const SAVE_EVERY_MS = 1000;
const rendered = new WeakMap();  // message -> { content, html }: reopening a chat does not parse it all again

function messageMeta(msg) {
  const parts = [];
  const s = msg.stats;
  if (s?.tokens) parts.push(`${s.tokens} tokens`);
  if (s?.tps) parts.push(`${s.tps.toFixed(1)} tokens/s`);
  if (msg.stopped) parts.push('stopped');
  else if (msg.finish === 'length') parts.push('cut at max tokens');
  return parts.join(' \u00b7 ');
}

// A reply in JSON mode is one code block, never markdown.
function renderReply(body, msg, { final }) {
  if (msg.json) renderCodeInto(body, jsonText(msg.content), 'json', { final });
  else renderInto(body, msg.content, { final });
}

function renderBody(body, msg) {
  if (msg.role === 'user') {
    body.textContent = msg.content;
    return;
  }
  if (state.streaming?.msg === msg) {
    renderReply(body, msg, { final: false });
    return;
  }
  const cached = rendered.get(msg);
  if (cached?.content === msg.content) {
    body.innerHTML = cached.html;  // sanitized and highlighted when it was made
    return;
  }
  renderReply(body, msg, { final: true });
  rendered.set(msg, { content: msg.content, html: body.innerHTML });
}

function messageNode(conv, msg, index) {
  const node = el('article', { className: `msg ${msg.role}` });
  node.dataset.index = index;
  const body = el('div', { className: 'body' });
  renderBody(body, msg);
  node.append(el('div', { className: 'role', textContent: msg.role === 'user' ? 'You' : 'Assistant' }), body);
  if (msg.sources?.length) {
    if (state.streaming?.msg !== msg) linkCitations(body, msg, index);
    node.append(sourcesNode(msg, index));
  }
  if (msg.error) node.append(el('div', { className: 'error', textContent: msg.error }));
  const meta = messageMeta(msg);
  if (meta) node.append(el('div', { className: 'meta', textContent: meta }));
  if (state.streaming?.msg === msg) return node;
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
    if (index === conv.messages.length - 1) {
      const again = el('button', { type: 'button', className: 'regenerate', textContent: 'Regenerate', disabled: busy });
      again.addEventListener('click', () => regenerate(conv));
      actions.append(again);
    }
  }
  node.append(actions);
  return node;
}

const atBottom = (box) => box.scrollHeight - box.scrollTop - box.clientHeight < 80;

// toBottom: when a conversation is opened. Otherwise the reader keeps their place unless they were at the end.
export function renderConversation({ toBottom = false } = {}) {
  const conv = state.current;
  $('title').textContent = conv.title;
  document.title = conv.messages.length ? `${conv.title} \u2013 hogar` : 'hogar chat';
  const box = $('messages');
  const follow = toBottom || atBottom(box);
  const top = box.scrollTop;
  const nodes = conv.messages.map((m, i) => messageNode(conv, m, i));
  $('empty').hidden = nodes.length > 0;
  box.replaceChildren($('empty'), ...nodes);
  if (state.streaming?.conv === conv) {
    state.streaming.node = nodes[nodes.length - 1];
    state.streaming.node.classList.add('streaming');
  }
  box.scrollTop = follow ? box.scrollHeight : top;
  renderComposer();
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
  const submit = async () => {
    const text = area.value.trim();
    if (!text || state.streaming || !schemaReady(conv)) return;
    const later = conv.messages.length - index - 2;  // beyond this message and its reply
    if (later > 0 && !await ask({ title: 'Replace what follows?', text: `Sending the edited message replaces the ` +
      `${later + 1} messages after it.`, ok: 'Send' })) return;
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
    if (e.key === 'Escape') { e.preventDefault(); e.stopPropagation(); renderConversation(); }
  });
  area.focus();
  area.setSelectionRange(area.value.length, area.value.length);
}

// The old reply is kept until the new one has begun: a retry that fails loses nothing.
export function regenerate(conv) {
  if (state.streaming || !schemaReady(conv)) return;
  const last = conv.messages[conv.messages.length - 1];
  const previous = last?.role === 'assistant' ? conv.messages.pop() : null;
  if (!conv.messages.length) return;
  conv.usage = null;
  generate(conv, previous);
}

function requestFor(conv) {
  const s = conv.settings;
  const messages = [];
  if (s.system?.trim()) messages.push({ role: 'system', content: s.system });
  for (const m of conv.messages) if (m.content) messages.push({ role: m.role, content: m.content });
  const body = { messages };
  const model = conv.model || state.models[0]?.id;
  if (model) body.model = model;
  for (const k of SETTINGS) if (s[k] !== null && s[k] !== undefined && s[k] !== '') body[k] = s[k];
  const tools = fileSearchTools(conv);
  if (tools) body.tools = tools;
  const format = responseFormat(s);  // schemaReady() checked it before the request was made
  if (format) body.response_format = format;
  return body;
}

export async function send(text) {
  if (!text.trim()) return;
  if (state.streaming) {
    showNotice(`Wait for the reply in \u201c${state.streaming.conv.title}\u201d, or stop it there.`);
    return;
  }
  if (!schemaReady()) return;  // the message stays in the box
  const conv = state.current;
  conv.messages.push({ role: 'user', content: text });
  if (!conv.titleEdited && conv.messages.filter((m) => m.role === 'user').length === 1) {
    conv.title = titleFrom(text);
    renameStore(conv);
  }
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
  const follow = atBottom(box);
  const t0 = performance.now();
  renderReply(s.node.querySelector('.body'), s.msg, { final: false });
  nextRenderAt = performance.now() + 8 * (performance.now() - t0);
  if (follow) box.scrollTop = box.scrollHeight;
  renderStatus();
}

// The server sends the sources in the reply's first chunk: they are listed before the answer has finished.
function showSources(s, sources) {
  s.msg.sources = cleanSources(sources);
  if (!s.msg.sources.length) { delete s.msg.sources; return; }
  if (s.conv !== state.current || !s.node) return;
  s.node.querySelector(':scope > .sources')?.remove();
  s.node.querySelector('.body').after(sourcesNode(s.msg, Number(s.node.dataset.index)));
}

async function generate(conv, previous = null) {
  clearError();
  const msg = { role: 'assistant', content: '' };
  if (jsonMode(conv.settings)) msg.json = true;
  conv.messages.push(msg);
  const controller = new AbortController();
  state.streaming = { conv, msg, controller, node: null, chunks: 0, first: 0, last: 0 };
  const s = state.streaming;
  const saved = save(conv);  // the sent message is stored before the request goes out
  renderList();
  if (state.current === conv) renderConversation({ toBottom: true });
  await saved;
  let usage = null;
  let lastSave = performance.now();
  let failure = null;
  try {
    for await (const chunk of state.api.chat(requestFor(conv), controller.signal)) {
      if (Array.isArray(chunk.sources)) showSources(s, chunk.sources);
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
      if (msg.content && performance.now() - lastSave > SAVE_EVERY_MS) { lastSave = performance.now(); save(conv); }
    }
  } catch (e) {
    if (e.name === 'AbortError') msg.stopped = true;
    else failure = e;
  }
  if (!msg.content && (previous || failure?.kind === 'auth')) {
    conv.messages.pop();  // nothing came: the earlier reply (if any) stays
    if (previous) conv.messages.push(previous);
  } else {
    const seconds = (s.last - s.first) / 1000;
    msg.stats = { tokens: usage?.completion_tokens ?? s.chunks, tps: s.chunks > 1 && seconds > 0 ? (s.chunks - 1) / seconds : null };
    if (failure) msg.error = failure instanceof ApiError ? failure.message : `Unexpected error: ${failure?.message || failure}`;
    conv.usage = usage;  // null after a stop or an error: unknown until the next full reply
  }
  finishStream();
  await save(conv);
  if (failure instanceof ApiError && failure.kind === 'auth' && !msg.content) {
    if (await askForKey()) {
      await loadModels();
      regenerateOrResend(conv);
    } else {
      showError(`${failure.message} Set the key under Server, then Retry.`, () => regenerateOrResend(conv));
    }
  } else if (failure) {
    showError(msg.error || failure.message, () => regenerateOrResend(conv));
  }
}

// After a failure the conversation ends with the user's message, or with the reply that was kept or cut short.
function regenerateOrResend(conv) {
  if (!schemaReady(conv)) return;
  if (conv.messages[conv.messages.length - 1]?.role === 'user') generate(conv);
  else regenerate(conv);
}

function finishStream() {
  state.streaming = null;
  renderList();
  renderConversation();
  if (document.activeElement === document.body) $('input').focus();
}

export function stop() { state.streaming?.controller.abort(); }

// Stop belongs to the conversation that is replying; elsewhere Send waits for it.
export function renderComposer() {
  const s = state.streaming;
  const here = s !== null && s.conv === state.current;
  $('send').hidden = here;
  $('stop').hidden = !here;
  $('send').disabled = s !== null && !here;
  $('send').title = s && !here ? `Waiting for the reply in \u201c${s.conv.title}\u201d` : '';
}

export function renderStatus() {
  const s = state.streaming;
  const conv = state.current;
  let speed = '';
  if (s && s.conv === conv) {
    const seconds = (s.last - s.first) / 1000;
    speed = s.chunks > 1 && seconds > 0 ? `${((s.chunks - 1) / seconds).toFixed(1)} tokens/s`
      : 'waiting for the first token\u2026';
  } else if (s) {
    speed = `replying in \u201c${s.conv.title}\u201d\u2026`;
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

export function copyCode(event) {
  const button = event.target.closest('.copy-code');
  if (button) flash(button, copyText(button.closest('.code').querySelector('code').textContent.replace(/\n$/, '')));
}

// Leaving the page mid-reply keeps what has arrived, marked as stopped.
export function saveOnLeave() {
  const s = state.streaming;
  if (!s) return;
  s.msg.stopped = true;
  save(s.conv);
}
