// The settings panel of the open conversation: system prompt, sampling, and JSON output (a toggle and a schema).
import { isSaved, save } from './conversations.js';
import { parseSchema } from './jsonmode.js';
import { DEFAULTS, state } from './state.js';
import { SETTINGS } from './store.js';
import { $ } from './ui.js';

const INTEGERS = new Set(['top_k', 'max_tokens', 'seed']);

export function renderSettings() {
  const s = { ...DEFAULTS, ...state.current.settings };
  $('s-system').value = s.system || '';
  for (const k of SETTINGS) $(`s-${k}`).value = s[k] ?? '';
  $('s-json').checked = s.json === true;
  $('s-schema').value = s.schema || '';
  showSchemaProblem(problemOf(s.schema));
}

// The value to use, null for "server default", or undefined when the field holds something invalid.
function readSetting(k) {
  const input = $(`s-${k}`);
  if (input.value.trim() === '') return null;
  const v = Number(input.value);
  if (!Number.isFinite(v) || !input.checkValidity()) return undefined;
  return INTEGERS.has(k) ? Math.trunc(v) : v;
}

function showSchemaProblem(message) {
  $('s-schema-error').textContent = message;
  $('s-schema-error').hidden = !message;
  if (message) {
    $('s-schema').setAttribute('aria-invalid', 'true');
    $('s-schema').setAttribute('aria-describedby', 's-schema-error s-schema-note');
  } else {
    $('s-schema').removeAttribute('aria-invalid');
    $('s-schema').setAttribute('aria-describedby', 's-schema-note');
  }
}

// What is wrong with a schema's text, '' when it is empty or a JSON object.
function problemOf(text) {
  try {
    parseSchema(text);
    return '';
  } catch (e) {
    return e.message;
  }
}

// Before a request goes out: a schema that is not JSON stops it, and the panel opens on the box saying why.
export function schemaReady(conv = state.current) {
  const problem = problemOf(conv.settings.schema);
  if (!problem || conv !== state.current) return !problem;
  showSchemaProblem(problem);
  if ($('settings').hidden) toggleSettings();
  $('s-schema').focus();
  return false;
}

export async function settingsChanged(event) {
  const conv = state.current;
  conv.settings.system = $('s-system').value;
  for (const k of SETTINGS) {
    const v = readSetting(k);
    if (v !== undefined) conv.settings[k] = v;
    else if (event?.target === $(`s-${k}`)) $(`s-${k}`).reportValidity();  // says what is allowed; the old value stays
  }
  conv.settings.json = $('s-json').checked;
  conv.settings.schema = $('s-schema').value;  // kept even when not JSON yet, so nothing typed is lost
  if (event?.target === $('s-schema')) showSchemaProblem(problemOf($('s-schema').value));
  if (isSaved(conv)) await save(conv);
}

export function resetSettings() {
  state.current.settings = { ...DEFAULTS };
  renderSettings();
  settingsChanged();
}

function toggleSettings() {
  const panel = $('settings');
  panel.hidden = !panel.hidden;
  $('toggle-settings').setAttribute('aria-expanded', String(!panel.hidden));
  return !panel.hidden;
}

export function wireSettings() {
  for (const id of ['s-system', 's-json', 's-schema', ...SETTINGS.map((k) => `s-${k}`)]) {
    $(id).addEventListener('change', settingsChanged);
  }
  // While a problem is shown, it goes as soon as the text is fixed; a new one waits until the box is left.
  $('s-schema').addEventListener('input', () => {
    if (!$('s-schema-error').hidden && !problemOf($('s-schema').value)) showSchemaProblem('');
  });
  $('s-reset').addEventListener('click', resetSettings);
  $('toggle-settings').addEventListener('click', () => { if (toggleSettings()) $('s-system').focus(); });
}
