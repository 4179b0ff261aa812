import { parse as parseYaml } from 'yaml';
import { formatPath } from './schema.js';

const reference = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/**
 * Replaces `${VAR}` and `${VAR:-default}` in every string of a parsed YAML document (`$${` is a
 * literal `${`). Interpolating values rather than the file's text means an environment value can't
 * inject YAML structure. A scalar that was one whole reference is re-read as a YAML scalar, so
 * `sizeInMBs: ${SIZE:-5}` yields the number 5.
 */
export function interpolate(
  document: unknown,
  env: Record<string, string | undefined>,
  problems: string[],
  path: (string | number)[] = [],
): unknown {
  if (typeof document === 'string') return interpolateString(document, env, problems, path);
  if (Array.isArray(document)) return document.map((item, i) => interpolate(item, env, problems, [...path, i]));
  if (document !== null && typeof document === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(document)) out[key] = interpolate(value, env, problems, [...path, key]);
    return out;
  }
  return document;
}

function interpolateString(
  value: string,
  env: Record<string, string | undefined>,
  problems: string[],
  path: (string | number)[],
): unknown {
  if (!value.includes('${')) return value;
  let whole = false;
  const result = value.replace(reference, (match, name: string | undefined, fallback: string | undefined, offset: number) => {
    if (match === '$${') return '${';
    whole = offset === 0 && match.length === value.length;
    const found = env[name!];
    if (found !== undefined && found !== '') return found;
    if (fallback !== undefined) return fallback;
    problems.push(`${formatPath(path)}: environment variable ${name} is not set (write \${${name}:-default} to give a default)`);
    return '';
  });
  if (!whole) return result;
  try {
    const scalar: unknown = parseYaml(result);
    return scalar === null || typeof scalar === 'object' ? result : scalar;
  } catch {
    return result;
  }
}
