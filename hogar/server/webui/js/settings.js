// The settings panel of the open conversation: system prompt and sampling.
import { isSaved, save } from './conversations.js';
import { DEFAULTS, state } from './state.js';
import { SETTINGS } from './store.js';
import { $ } from './ui.js';

const INTEGERS = new Set(['top_k', 'max_tokens', 'seed']);

export function renderSettings() {
  const s = { ...DEFAULTS, ...state.current.settings };
  $('s-system').value = s.system || '';
  for (const k of SETTINGS) $(`s-${k}`).value = s[k] ?? '';
}

// The value to use, null for "server default", or undefined when the field holds something invalid.
function readSetting(k) {
  const input = $(`s-${k}`);
  if (input.value.trim() === '') return null;
  const v = Number(input.value);
  if (!Number.isFinite(v) || !input.checkValidity()) return undefined;
  return INTEGERS.has(k) ? Math.trunc(v) : v;
}

export async function settingsChanged(event) {
  const conv = state.current;
  conv.settings.system = $('s-system').value;
  for (const k of SETTINGS) {
    const v = readSetting(k);
    if (v !== undefined) conv.settings[k] = v;
    else if (event?.target === $(`s-${k}`)) $(`s-${k}`).reportValidity();  // says what is allowed; the old value stays
  }
  if (isSaved(conv)) await save(conv);
}

export function resetSettings() {
  state.current.settings = { ...DEFAULTS };
  renderSettings();
  settingsChanged();
}

export function wireSettings() {
  for (const id of ['s-system', ...SETTINGS.map((k) => `s-${k}`)]) $(id).addEventListener('change', settingsChanged);
  $('s-reset').addEventListener('click', resetSettings);
  $('toggle-settings').addEventListener('click', () => {
    const panel = $('settings');
    panel.hidden = !panel.hidden;
    $('toggle-settings').setAttribute('aria-expanded', String(!panel.hidden));
    if (!panel.hidden) $('s-system').focus();
  });
}
