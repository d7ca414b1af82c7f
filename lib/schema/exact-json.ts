/**
 * JSON parsing that never loses digits. `JSON.parse` turns 9007199254740993 into …992 and
 * 0.1234567890123456789 into a double; for longs and decimals that is data loss. Requests are
 * parsed with the fast native parser first; when a decoder meets a number that may have lost
 * digits it throws InexactNumberError and the request is parsed again with lossless-json,
 * which keeps big integers as bigint and long decimals as {@link ExactNumber}.
 */
import { isInteger, parse } from 'lossless-json';
import { ExactNumber } from './values.ts';

export class JsonSyntaxError extends Error {}

function parseNumber(text: string): unknown {
  if (isInteger(text)) {
    const n = Number(text);
    return Number.isSafeInteger(n) ? n : BigInt(text);
  }
  const digits = text.replace(/[-+.]|[eE].*$/g, '').replace(/^0+/, '');
  return digits.length > 15 ? new ExactNumber(text) : Number(text);
}

/** The fast path: native JSON.parse with errors a client can read. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    if (e instanceof RangeError) throw new JsonSyntaxError('JSON is nested too deeply');
    throw new JsonSyntaxError(`malformed JSON: ${(e as Error).message}`);
  }
}

/** The exact path: numbers keep every digit. */
export function parseExactJson(text: string): unknown {
  try {
    return parse(text, null, parseNumber);
  } catch (e) {
    if (e instanceof RangeError) throw new JsonSyntaxError('JSON is nested too deeply');
    throw new JsonSyntaxError(`malformed JSON: ${(e as Error).message}`);
  }
}
