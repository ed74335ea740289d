// The passages a reply was grounded in, listed under it ("[1] guide.pdf, page 3"): each opens to show the passage and,
// for an uploaded file, a button that opens the file. The [n] the model cites in its reply link to them.
import { ApiError } from './api.js';
import { state } from './state.js';
import { $, el, showError } from './ui.js';

const CITATION = /\[(\d{1,3})\]/g;
const HAS_CITATION = /\[\d{1,3}\]/;

export const sourceId = (msgIndex, n) => `src-${msgIndex}-${n}`;

export function sourceLabel(s) {
  if (s.where) return s.where;
  const parts = [s.filename || (s.source || '').split('/').pop() || 'source'];
  if (s.page !== null && s.page !== undefined) parts.push(`page ${s.page}`);
  if (s.heading) parts.push(s.heading);
  return parts.join(', ');
}

export function sourcesNode(msg, msgIndex) {
  const title = el('p', { className: 'sources-title', id: `sources-${msgIndex}`, textContent: 'Sources' });
  const list = el('ol', {}, ...msg.sources.map((s) => {
    const details = el('details', {}, el('summary', { textContent: `[${s.index}] ${sourceLabel(s)}` }),
      el('blockquote', { className: 'passage', textContent: s.text, tabIndex: 0 }));
    if (s.file_id) {
      const name = s.filename || 'the file';
      const open = el('button', { type: 'button', className: 'open-file', textContent: `Open ${name}` });
      Object.assign(open.dataset, { file: s.file_id, name, page: s.page ?? '' });
      details.append(open);
    }
    return el('li', { id: sourceId(msgIndex, s.index) }, details);
  }));
  list.setAttribute('aria-labelledby', title.id);
  return el('section', { className: 'sources' }, title, list);
}

// [n] in the reply's text (not in code or links) become links to source n.
export function linkCitations(body, msg, msgIndex) {
  const known = new Map(msg.sources.map((s) => [String(s.index), s]));
  const walker = document.createTreeWalker(body, NodeFilter.SHOW_TEXT, {
    acceptNode: (n) => (n.parentElement.closest('pre, code, a') ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT),
  });
  const texts = [];
  while (walker.nextNode()) if (HAS_CITATION.test(walker.currentNode.data)) texts.push(walker.currentNode);
  for (const text of texts) {
    const parts = [];
    let at = 0;
    for (const m of text.data.matchAll(CITATION)) {
      const s = known.get(m[1]);
      if (!s) continue;
      parts.push(text.data.slice(at, m.index));
      const link = el('a', { className: 'cite', href: `#${sourceId(msgIndex, m[1])}`, textContent: m[0],
        title: sourceLabel(s) });
      parts.push(link);
      at = m.index + m[0].length;
    }
    if (!parts.length) continue;
    parts.push(text.data.slice(at));
    text.replaceWith(...parts);
  }
}

function showSource(link) {
  const item = document.getElementById(link.getAttribute('href').slice(1));
  if (!item) return;
  const details = item.querySelector('details');
  details.open = true;
  item.scrollIntoView({ block: 'nearest' });
  details.querySelector('summary').focus();
}

// What the browser shows of a file: a PDF as a PDF, a .docx is downloaded, anything else as plain text (an uploaded
// web page must never run as a page of this origin).
function viewType(name) {
  const lower = name.toLowerCase();
  if (lower.endsWith('.pdf')) return 'application/pdf';
  if (lower.endsWith('.docx')) return null;
  return 'text/plain;charset=utf-8';
}

// The file needs the API key, so it is fetched here and opened from a blob: URL.
async function openFile(button) {
  const { file, name, page } = button.dataset;
  let blob;
  try {
    blob = await (await state.api._fetch(`/files/${encodeURIComponent(file)}/content`)).blob();
  } catch (e) {
    showError(`Could not open ${name}: ${e instanceof ApiError ? e.detail : e?.message || e}`);
    return;
  }
  const type = viewType(name);
  const url = URL.createObjectURL(new Blob([blob], { type: type || 'application/octet-stream' }));
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
  if (type === null || !window.open(type === 'application/pdf' && page ? `${url}#page=${page}` : url, '_blank')) {
    const a = el('a', { href: url, download: name });  // no viewer for it, or the browser blocked the new tab
    document.body.append(a);
    a.click();
    a.remove();
  }
}

export function sourcesClick(event) {
  const link = event.target.closest('a.cite');
  if (link && $('messages').contains(link)) {
    event.preventDefault();
    showSource(link);
    return;
  }
  const button = event.target.closest('button.open-file');
  if (button) openFile(button);
}
