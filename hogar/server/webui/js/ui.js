// Small DOM helpers: element lookup and creation, the message banner, the question dialog, the phone drawer.

export const $ = (id) => document.getElementById(id);

export function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

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

export const showError = (message, retry = null) => showBanner(message, { retry });
export const showNotice = (message) => showBanner(message, { notice: true });
export function clearError() { $('banner').hidden = true; retryAction = null; }
export function retry() { const again = retryAction; clearError(); again?.(); }

// One modal question at a time: resolves to the typed text (with a label), true (without), or null when cancelled.
export function ask({ title, text = '', label = '', value = '', type = 'text', ok = 'OK', danger = false }) {
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
  $('ask-ok').classList.toggle('danger', danger);
  $('ask-ok').classList.toggle('primary', !danger);
  dialog.returnValue = '';
  dialog.showModal();
  if (label) input.select(); else $('ask-ok').focus();
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => {
      resolve(dialog.returnValue === 'ok' ? (label ? input.value : true) : null);
    }, { once: true });
  });
}

export async function flash(button, promise) {
  const ok = await promise;
  const before = button.textContent;
  button.textContent = ok ? 'Copied' : 'Copy failed';
  setTimeout(() => { button.textContent = before; }, 1500);
}

export function openSidebar() {
  $('sidebar').classList.add('open');
  $('main').inert = true;
  $('scrim').hidden = false;
  $('open-sidebar').setAttribute('aria-expanded', 'true');
  ($('sidebar').querySelector('[aria-current]') || $('new-chat')).focus();
}

export function closeSidebar() {
  if (!$('sidebar').classList.contains('open')) return false;
  $('sidebar').classList.remove('open');
  $('main').inert = false;
  $('scrim').hidden = true;
  $('open-sidebar').setAttribute('aria-expanded', 'false');
  return true;
}

export function autosize() {
  const input = $('input');
  input.style.height = 'auto';
  input.style.height = `${input.scrollHeight + 2}px`;
}
