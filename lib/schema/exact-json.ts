/**
 * JSON parsing that never loses digits. `JSON.parse` turns 9007199254740993 into …992 and
 * 0.1234567890123456789 into a double; for longs and decimals that is data loss. Bodies with no
 * long digit runs (the common case) go through the fast native parser; the rest through
 * lossless-json, keeping big integers as bigint and long decimals as {@link ExactNumber}.
 */
import { isInteger, parse } from 'lossless-json';
import { ExactNumber } from './values.ts';

/** Any run of 16+ digits (a dot may sit inside it) may be a number a double cannot hold. */
const LONG_NUMBER = /\d[\d.]{15,}/;

export class JsonSyntaxError extends Error {}

export const MAX_JSON_DEPTH = 64;

function parseNumber(text: string): unknown {
  if (isInteger(text)) {
    const n = Number(text);
    return Number.isSafeInteger(n) ? n : BigInt(text);
  }
  const digits = text.replace(/[-+.]|[eE].*$/g, '').replace(/^0+/, '');
  return digits.length > 15 ? new ExactNumber(text) : Number(text);
}

export function parseExactJson(text: string): unknown {
  let value: unknown;
  try {
    value = LONG_NUMBER.test(text) ? parse(text, null, parseNumber) : JSON.parse(text);
  } catch (e) {
    if (e instanceof RangeError) throw new JsonSyntaxError('JSON is nested too deeply');
    throw new JsonSyntaxError(`malformed JSON: ${(e as Error).message}`);
  }
  if (depthExceeds(value, MAX_JSON_DEPTH))
    throw new JsonSyntaxError(`JSON is nested deeper than ${MAX_JSON_DEPTH} levels`);
  return value;
}

function depthExceeds(v: unknown, max: number): boolean {
  if (max < 0) return true;
  if (v === null || typeof v !== 'object' || v instanceof ExactNumber) return false;
  if (Array.isArray(v)) {
    for (const x of v) if (typeof x === 'object' && x !== null && depthExceeds(x, max - 1)) return true;
    return false;
  }
  for (const k in v as Record<string, unknown>) {
    const x = (v as Record<string, unknown>)[k];
    if (typeof x === 'object' && x !== null && depthExceeds(x, max - 1)) return true;
  }
  return false;
}
