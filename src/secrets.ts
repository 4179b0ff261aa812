/**
 * Secrets never leave the process in what it prints or serves: logs, error messages, `validate`
 * output, admin responses, dead letters. Two nets: the values the configuration holds under a
 * secret-sounding key or inside a URL (known once the config is read, whatever the message that
 * later carries them), and patterns for credentials in URLs that no config named.
 */

export const REDACTED = '[redacted]';

/** Keys whose values are secret, in the config, in log fields, anywhere. */
export const SECRET_KEY = /pass(word|phrase)?$|secret|token|access[-_]?key|api[-_]?key|credential|authorization|signature|private[-_]?key|session[-_]?key/i;

/** userinfo of a URL (`scheme://user:password@`), and query parameters that carry credentials. */
const URL_PASSWORD = /\b([a-z][a-z0-9+.-]*:\/\/[^\s:/@'"]*:)([^\s@/'"]+)@/gi;
const SECRET_PARAMETER = /([?&;](?:[a-z0-9_-]*(?:api[-_]?key|token|secret|password|passwd|signature|sig|credential|access[-_]?key)[a-z0-9_-]*)=)([^&\s'"#]+)/gi;

/** Shorter values would redact ordinary words (a password "test" would blank every "test"). */
const MIN_SECRET_LENGTH = 6;

const known = new Set<string>();
let pattern: RegExp | undefined;

/** Remembers secret values (the config's): from now on they are redacted wherever they appear. */
export function addSecrets(values: Iterable<string>): void {
  let added = false;
  for (const value of values) {
    if (value.length < MIN_SECRET_LENGTH || known.has(value)) continue;
    known.add(value);
    // A value also appears percent-encoded (inside a URL) or JSON-escaped (inside a log line).
    for (const form of [encodeURIComponent(value), JSON.stringify(value).slice(1, -1)]) if (form !== value) known.add(form);
    added = true;
  }
  // Longest first, so a secret containing another is replaced whole.
  if (added) pattern = new RegExp([...known].sort((a, b) => b.length - a.length).map(escapeRegExp).join('|'), 'g');
}

/** The text with every known secret and every credential in a URL replaced by [redacted]. */
export function redact(text: string): string {
  let out = pattern ? text.replace(pattern, REDACTED) : text;
  if (out.includes('://')) out = out.replace(URL_PASSWORD, `$1${REDACTED}@`);
  if (out.includes('=')) out = out.replace(SECRET_PARAMETER, `$1${REDACTED}`);
  return out;
}

/**
 * The secret values of a parsed configuration document: strings under a secret-sounding key, the
 * password of every URL, and credential parameters of every URL's query.
 */
export function secretsIn(document: unknown): string[] {
  const out: string[] = [];
  const walk = (value: unknown, key: string | undefined, depth: number) => {
    if (depth > 32) return;
    if (typeof value === 'string') {
      if (key !== undefined && SECRET_KEY.test(key) && !/file$|path$/i.test(key)) out.push(value);
      if (value.includes('://')) out.push(...secretsOfUrl(value));
    } else if (Array.isArray(value)) {
      for (const item of value) walk(item, key, depth + 1);
    } else if (value !== null && typeof value === 'object') {
      for (const [k, v] of Object.entries(value)) walk(v, k, depth + 1);
    }
  };
  walk(document, undefined, 0);
  return out;
}

function secretsOfUrl(text: string): string[] {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return [];
  }
  const out: string[] = [];
  if (url.password) out.push(decodeURIComponent(url.password), url.password);
  for (const [name, value] of url.searchParams) if (SECRET_KEY.test(name) || /^sig$/i.test(name)) out.push(value);
  return out;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
