// A conversation's JSON mode: the response_format its requests carry, the schema box's check, and the text of a JSON
// reply as the page shows it.

// The schema typed in the settings, parsed; null when the box is empty. Throws an Error with a one-line message.
export function parseSchema(text) {
  if (typeof text !== 'string' || !text.trim()) return null;
  let schema;
  try {
    schema = JSON.parse(text);
  } catch (e) {
    throw new Error(`The JSON schema is not JSON: ${e.message.replace(/\s+/g, ' ')}`);
  }
  if (!schema || typeof schema !== 'object' || Array.isArray(schema)) {
    throw new Error('The JSON schema must be a JSON object, such as {"type": "object"}.');
  }
  return schema;
}

// Whether the replies of a conversation with these settings are JSON: the toggle, or a schema in the box.
export const jsonMode = (settings) => settings?.json === true || Boolean(settings?.schema?.trim());

// The request's response_format, or null for plain text. Throws like parseSchema.
export function responseFormat(settings) {
  const schema = parseSchema(settings?.schema);
  if (schema) return { type: 'json_schema', json_schema: { name: 'page', schema, strict: true } };
  return settings?.json === true ? { type: 'json_object' } : null;
}

// A JSON reply pretty-printed when it parses; otherwise (still streaming, or cut short) as it came.
export function jsonText(content) {
  try {
    return JSON.stringify(JSON.parse(content), null, 2);
  } catch {
    return content;
  }
}
