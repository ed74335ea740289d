// Markdown to safe HTML: marked parses, DOMPurify removes anything active, highlight.js colours finished code blocks.
// Images become links: a model's ![](http://...) must not make the browser fetch from another host.

const { marked, DOMPurify, hljs } = window;

const escapeHtml = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
marked.use({
  renderer: {
    image({ href, text }) { return `<a href="${escapeHtml(href)}">[image: ${escapeHtml(text || href)}]</a>`; },
  },
});

DOMPurify.addHook('afterSanitizeAttributes', (node) => {
  if (node.tagName === 'A') {
    node.setAttribute('target', '_blank');
    node.setAttribute('rel', 'noopener noreferrer');
  }
});
hljs.configure({ ignoreUnescapedHTML: true });

const PURIFY = {
  FORBID_TAGS: ['img', 'picture', 'source', 'video', 'audio', 'iframe', 'style', 'form', 'input', 'button',
    'textarea', 'select', 'link', 'meta', 'svg', 'math', 'dialog'],
  FORBID_ATTR: ['style', 'srcset', 'background', 'poster'],
  SANITIZE_NAMED_PROPS: true,  // a reply's id="input" becomes user-content-input: it cannot stand in for the page's own
};
const AUTO_DETECT_LIMIT = 6000;  // characters; guessing the language of bigger unlabelled blocks costs too much
const HIGHLIGHT_LIMIT = 100000;  // characters; bigger blocks stay plain rather than block the page

export function renderInto(element, text, { final }) {
  element.innerHTML = DOMPurify.sanitize(marked.parse(text, { async: false, gfm: true, breaks: true }), PURIFY);
  for (const code of element.querySelectorAll('pre > code')) {
    const lang = (code.className.match(/language-([\w#+.-]+)/) || [])[1] || '';
    frame(code, lang, final);
  }
}

// Text shown as one code block of the language `lang`, never parsed as markdown (a JSON reply).
export function renderCodeInto(element, text, lang, { final }) {
  const pre = document.createElement('pre');
  const code = document.createElement('code');
  code.className = `language-${lang}`;
  code.textContent = text;
  pre.append(code);
  element.replaceChildren(pre);
  frame(code, lang, final);
}

// The block's frame: a head naming the language, with a Copy button.
function frame(code, lang, final) {
  const pre = code.parentElement;
  const box = document.createElement('div');
  box.className = 'code';
  const head = document.createElement('div');
  head.className = 'code-head';
  const label = document.createElement('span');
  label.textContent = lang || 'code';
  const copy = document.createElement('button');
  copy.type = 'button';
  copy.className = 'copy-code';
  copy.textContent = 'Copy';
  copy.setAttribute('aria-label', `Copy the ${lang || 'code'} block`);
  head.append(label, copy);
  pre.replaceWith(box);
  pre.tabIndex = 0;  // it may scroll sideways: the keyboard must be able to reach it
  box.append(head, pre);
  if (final) highlight(code, lang);
}

function highlight(code, lang) {
  if (code.textContent.length > HIGHLIGHT_LIMIT) return;
  if (lang && hljs.getLanguage(lang)) hljs.highlightElement(code);
  else if (code.textContent.length <= AUTO_DETECT_LIMIT) {
    const result = hljs.highlightAuto(code.textContent);
    if (result.relevance >= 5) {
      code.innerHTML = result.value;  // hljs escapes the text it colours
      code.classList.add('hljs');
    }
  }
}

export async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    try { await navigator.clipboard.writeText(text); return true; } catch { /* fall back below */ }
  }
  const area = document.createElement('textarea');  // plain http on a LAN address: no Clipboard API
  area.value = text;
  area.setAttribute('readonly', '');
  area.className = 'sr-only';
  document.body.append(area);
  area.select();
  let ok = false;
  try { ok = document.execCommand('copy'); } catch { ok = false; }
  area.remove();
  return ok;
}
