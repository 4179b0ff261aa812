import { SECRET_KEY } from './secrets.js';
import { z } from 'zod';

/** Schema pieces whose messages read `must be 1–128, got 0`, shared by the engine and plug-ins. */
export function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'string') return JSON.stringify(value);
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

export function intIn(min: number, max: number) {
  return z.unknown().transform((value, ctx) => {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      ctx.addIssue({
        code: 'custom',
        message: value === undefined ? `is required (${min}–${max})` : `must be ${min}–${max}, got ${show(value)}`,
      });
      return z.NEVER;
    }
    return value;
  });
}

export function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  return z.unknown().transform((value, ctx) => {
    if (typeof value !== 'string' || !values.includes(value)) {
      ctx.addIssue({
        code: 'custom',
        message:
          value === undefined
            ? `is required (one of ${values.join(' | ')})`
            : `must be one of ${values.join(' | ')}, got ${show(value)}`,
      });
      return z.NEVER;
    }
    return value as T[number];
  });
}

export function text(what = 'a non-empty string') {
  return z.unknown().transform((value, ctx) => {
    if (typeof value !== 'string' || value.length === 0) {
      ctx.addIssue({ code: 'custom', message: value === undefined ? `is required (${what})` : `must be ${what}, got ${show(value)}` });
      return z.NEVER;
    }
    return value;
  });
}

export function matching(pattern: RegExp, what: string) {
  return text(what).transform((value, ctx) => {
    if (!pattern.test(value)) {
      ctx.addIssue({ code: 'custom', message: `must be ${what}, got ${show(value)}` });
      return z.NEVER;
    }
    return value;
  });
}

export const httpUrl = matching(/^https?:\/\/[^\s/]+/, 'an http:// or https:// URL');

export function flag() {
  return z.unknown().transform((value, ctx) => {
    if (typeof value !== 'boolean') {
      ctx.addIssue({ code: 'custom', message: `must be true or false, got ${show(value)}` });
      return z.NEVER;
    }
    return value;
  });
}

/** `deliveryStreams[0].s3Destination.bufferingHints.sizeInMBs` */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out.length === 0 ? String(part) : `.${String(part)}`;
  }
  return out || '(top level)';
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value === 'object' ? 'object' : typeof value;
}

/** A value at a secret-sounding key (a password, an access key) is never echoed in a message. */
const atSecret = (path: readonly PropertyKey[]) => path.some((part) => typeof part === 'string' && SECRET_KEY.test(part) && !/file$|path$/i.test(part));

export function formatIssues(error: z.ZodError): string[] {
  return error.issues.map((issue) => {
    if (atSecret(issue.path)) {
      if (issue.code === 'invalid_type') return `${formatPath(issue.path)}: expected ${issue.expected}, got ${typeName(issue.input)}`;
      return `${formatPath(issue.path)}: ${issue.message.replace(/, got .*$/s, ` (the value is not shown: ${issue.path.at(-1)?.toString()} holds a secret)`)}`;
    }
    if (issue.code === 'unrecognized_keys') {
      const keys = issue.keys.map((k) => JSON.stringify(k)).join(', ');
      return `${formatPath(issue.path)}: unknown key${issue.keys.length > 1 ? 's' : ''} ${keys}`;
    }
    if (issue.code === 'invalid_type' && issue.input === undefined) {
      return `${formatPath(issue.path)}: is required (${issue.expected})`;
    }
    if (issue.code === 'invalid_type') {
      return `${formatPath(issue.path)}: expected ${issue.expected}, got ${typeName(issue.input)} ${show(issue.input)}`;
    }
    return `${formatPath(issue.path)}: ${issue.message}`;
  });
}

export function numberIn(min: number, max: number) {
  return z.unknown().transform((value, ctx) => {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
      ctx.addIssue({ code: 'custom', message: value === undefined ? `is required (${min}–${max})` : `must be ${min}–${max}, got ${show(value)}` });
      return z.NEVER;
    }
    return value;
  });
}

/** Re-reports a nested parse's issues under `path`, so every message keeps its full location. */
export function reportAt(ctx: z.RefinementCtx, path: PropertyKey[], error: z.ZodError): void {
  for (const issue of error.issues) {
    ctx.addIssue({ ...issue, path: [...path, ...issue.path] } as Parameters<z.RefinementCtx['addIssue']>[0]);
  }
}
