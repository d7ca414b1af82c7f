/**
 * The fast path for decoding a write request: one pass over the request's UTF-8 bytes that puts
 * `{"ops":[{"op":...,"row":{...}}]}` straight into columns ({@link OpBatch}) — strings as their
 * bytes, longs and timestamps as 64-bit words — without building the request as JSON objects
 * and then a value per field.
 *
 * It takes the common shape only: scalar column values, `"op"` before `"row"`, no repeated
 * properties, valid UTF-8. Anything else, and any error, returns undefined, and the caller
 * decodes the request the general way (`JSON.parse`, then {@link decodeTransaction}), which
 * also words every error. So the scanner never has to be right about an error, only about what
 * it accepts: for those requests its operations must be exactly the ones the general path gives
 * (test/request-scanner.test.ts checks this on random requests). Where a value is not in a fast
 * form (an escaped string, an ISO text the fast timestamp parser does not take, a long of more
 * than 15 digits) it is made into the JavaScript value `JSON.parse` would give and passed to the
 * column's general decoder.
 */

import { isUtf8 } from 'node:buffer';
import type { TypedColumn, Utf8Column } from '../columns/column-buffer.ts';
import { fastTimestampMicros } from '../schema/temporal.ts';
import { canonicalScalar, keyFromParts, type Value } from '../schema/values.ts';
import { JsonCursor } from '../util/json-cursor.ts';
import { OP_DELETE, OP_INSERT, OP_UPSERT, OpBatch } from './op-batch.ts';
import type { RowCodec } from './row-codec.ts';

const QUOTE = 34;

/** Not the fast shape (or not valid): decode the general way. */
const NOT_FAST = new Error('not in the fast shape');

/** How the scanner stores a column's values. */
enum Mode {
  /** long: integers of up to 15 digits as words. */
  Int64,
  /** timestamp, timestamptz: ISO text or integers as words. */
  Timestamp,
  /** double: numbers as they are. */
  Double,
  /** string: bytes as they are. */
  Utf8,
  /** everything else: the column's decoder. */
  General,
}

interface ScanPlan {
  /** `name"` per column, as bytes: a property name is matched in place. */
  quotedNames: Uint8Array[];
  names: string[];
  modes: Mode[];
  /** Per column: its position in the primary key, or -1. */
  keyPart: number[];
  withZone: boolean[];
}

const plans = new WeakMap<RowCodec, ScanPlan>();
const utf8 = new TextEncoder();

function planFor(codec: RowCodec): ScanPlan {
  let plan = plans.get(codec);
  if (!plan) {
    const fields = codec.schema.fields;
    const names = fields.map((f) => f.name);
    const modes = fields.map((f) => {
      switch (f.type.kind) {
        case 'long':
          return Mode.Int64;
        case 'timestamp':
        case 'timestamptz':
          return Mode.Timestamp;
        case 'double':
          return Mode.Double;
        case 'string':
          return Mode.Utf8;
        default:
          return Mode.General;
      }
    });
    plan = {
      names,
      quotedNames: names.map((n) => utf8.encode(`${n}"`)),
      modes,
      keyPart: names.map((_, c) => codec.keyColumns.indexOf(c)),
      withZone: fields.map((f) => f.type.kind === 'timestamptz'),
    };
    plans.set(codec, plan);
  }
  return plan;
}

const OPS_KEY = utf8.encode('"ops"');
const OP_KEY = utf8.encode('"op"');
const ROW_KEY = utf8.encode('"row"');
const OP_TEXT = [utf8.encode('"insert"'), utf8.encode('"upsert"'), utf8.encode('"delete"')];
const NULL = utf8.encode('null');
const TRUE = utf8.encode('true');
const FALSE = utf8.encode('false');

/**
 * The operations of a request as columns, or undefined when the request is not in the fast
 * shape or is not valid (then the general path decides).
 */
export function scanRequest(codec: RowCodec, body: Uint8Array, maxOps: number): OpBatch | undefined {
  if (!isUtf8(body)) return undefined;
  try {
    return new Scanner(codec, body).transaction(maxOps);
  } catch {
    // Not the fast shape, or a value a decoder refused (or one that needs the exact parser):
    // the general path decides, and words the error.
    return undefined;
  }
}

/** Fails the fast path (the general path decides). */
const notFast = (): never => {
  throw NOT_FAST;
};

class Scanner extends JsonCursor {
  declare readonly b: Buffer;
  private readonly plan: ScanPlan;
  private readonly batch: OpBatch;
  /** Per column: the operation that last set it, to notice repeated and missing columns. */
  private readonly seenIn: Int32Array;
  /** The current operation's key, part by part (canonical text, as keyString makes it). */
  private readonly keyParts: string[];

  constructor(
    private readonly codec: RowCodec,
    body: Uint8Array,
  ) {
    super(Buffer.from(body.buffer, body.byteOffset, body.byteLength), notFast);
    this.plan = planFor(codec);
    this.batch = new OpBatch(codec.schema);
    this.seenIn = new Int32Array(codec.decoders.length).fill(-1);
    this.keyParts = new Array(codec.keyColumns.length).fill('');
  }

  transaction(maxOps: number): OpBatch {
    this.expect(123); // {
    this.expectBytes(OPS_KEY);
    this.expect(58); // :
    this.expect(91); // [
    if (this.peek() === 93) throw NOT_FAST; // empty: the general path says so
    for (;;) {
      if (this.batch.length === maxOps) throw NOT_FAST;
      this.operation();
      const c = this.next();
      if (c === 44) continue; // ,
      if (c === 93) break; // ]
      throw NOT_FAST;
    }
    this.expect(125); // }
    this.skipSpace();
    if (this.p !== this.b.length) throw NOT_FAST;
    return this.batch;
  }

  private operation(): void {
    this.expect(123);
    this.expectBytes(OP_KEY);
    this.expect(58);
    this.skipSpace();
    // "insert", "upsert" or "delete": told apart by their first letter.
    const first = this.b[this.p + 1];
    const kind = first === 105 ? OP_INSERT : first === 117 ? OP_UPSERT : first === 100 ? OP_DELETE : -1;
    if (kind < 0 || !this.at(OP_TEXT[kind])) throw NOT_FAST;
    if (kind !== OP_INSERT && this.codec.keyColumns.length === 0) throw NOT_FAST;
    this.expect(44);
    this.expectBytes(ROW_KEY);
    this.expect(58);
    this.row(kind === OP_DELETE);
    this.expect(125);
    this.batch.addOp(kind, this.keyParts.length > 0 ? keyFromParts(this.keyParts) : undefined);
  }

  /** One row object, pushed to the batch's columns; a delete decodes only its key columns. */
  private row(keyOnly: boolean): void {
    const { decoders } = this.codec;
    const { keyPart } = this.plan;
    const columns = this.batch.columns;
    const n = decoders.length;
    const op = this.batch.length;
    const seenIn = this.seenIn;
    this.expect(123);
    let guess = 0;
    if (this.peek() === 125) {
      this.p++;
    } else {
      for (;;) {
        this.skipSpace();
        if (this.b[this.p] !== QUOTE) throw NOT_FAST;
        this.p++;
        const c = this.column(guess);
        if (seenIn[c] === op) throw NOT_FAST; // repeated: JSON.parse keeps the last
        seenIn[c] = op;
        this.expect(58);
        this.skipSpace();
        if (keyOnly && keyPart[c] < 0) {
          this.skipScalar(); // a delete's other columns are not decoded
          columns[c].push(null);
        } else {
          this.value(c, keyOnly);
        }
        guess = c + 1 === n ? 0 : c + 1;
        const sep = this.next();
        if (sep === 44) continue;
        if (sep === 125) break;
        throw NOT_FAST;
      }
    }
    for (let c = 0; c < n; c++) {
      if (seenIn[c] === op) continue;
      if (keyOnly) {
        if (keyPart[c] >= 0) throw NOT_FAST; // a delete without its key
        columns[c].push(null);
        continue;
      }
      this.general(c, null);
    }
  }

  /** The column whose name (and closing quote) starts here; `guess` is tried first. */
  private column(guess: number): number {
    const { quotedNames } = this.plan;
    if (guess < quotedNames.length && this.at(quotedNames[guess])) return guess;
    for (let c = 0; c < quotedNames.length; c++) if (this.at(quotedNames[c])) return c;
    throw NOT_FAST; // an unknown column, or a name written with escapes
  }

  /** Decodes the value here into column c. */
  private value(c: number, keyOnly: boolean): void {
    const b = this.b;
    const first = b[this.p];
    const mode = this.plan.modes[c];
    if (first === QUOTE) {
      const start = this.p + 1;
      const escaped = this.stringEnd();
      const end = this.p - 1;
      if (!escaped) {
        if (mode === Mode.Utf8) {
          (this.batch.columns[c] as Utf8Column).pushBytes(b, start, end);
          const part = this.plan.keyPart[c];
          if (part >= 0) this.keyParts[part] = b.toString('utf8', start, end);
          return;
        }
        if (mode === Mode.Timestamp) {
          const micros = fastTimestampMicros(b, start, end, this.plan.withZone[c]);
          if (!Number.isNaN(micros)) return this.int64(c, micros);
        }
      }
      const text = escaped
        ? (JSON.parse(b.toString('utf8', start - 1, end + 1)) as string)
        : b.toString('utf8', start, end);
      return this.general(c, text);
    }
    if (first === 45 || (first >= 48 && first <= 57)) {
      const n = this.number();
      if (this.shortInteger && (mode === Mode.Int64 || mode === Mode.Timestamp)) return this.int64(c, n);
      if (mode === Mode.Double) {
        (this.batch.columns[c] as TypedColumn).pushNumber(n);
        const part = this.plan.keyPart[c];
        if (part >= 0) this.keyParts[part] = String(n);
        return;
      }
      return this.general(c, n);
    }
    if (this.at(NULL)) {
      if (keyOnly) throw NOT_FAST; // a key is required
      return this.general(c, null);
    }
    if (this.at(TRUE)) return this.general(c, true);
    if (this.at(FALSE)) return this.general(c, false);
    throw NOT_FAST; // an object or array: the general path
  }

  /** A safe integer into a 64-bit column (what the decoder makes a bigint of). */
  private int64(c: number, n: number): void {
    (this.batch.columns[c] as TypedColumn).pushNumber(n);
    const part = this.plan.keyPart[c];
    if (part >= 0) this.keyParts[part] = String(n); // String(BigInt(n)) === String(n), -0 too
  }

  /** A JSON value (as `JSON.parse` gives it) through the column's decoder. */
  private general(c: number, json: unknown): void {
    const v: Value = this.codec.decoders[c](json, this.plan.names[c]);
    this.batch.columns[c].push(v);
    const part = this.plan.keyPart[c];
    if (part >= 0) this.keyParts[part] = canonicalScalar(v);
  }

  /** Steps over a scalar without decoding it. */
  private skipScalar(): void {
    const first = this.b[this.p];
    if (first === QUOTE) {
      const start = this.p;
      // Escapes are checked as JSON.parse checks them (it throws on a bad one).
      if (this.stringEnd()) JSON.parse(this.b.toString('utf8', start, this.p));
      return;
    }
    if (first === 45 || (first >= 48 && first <= 57)) {
      this.number();
      return;
    }
    if (this.at(NULL) || this.at(TRUE) || this.at(FALSE)) return;
    throw NOT_FAST;
  }

  /** Whether the last number was an integer of at most 15 digits (exact, and a safe integer). */
  private shortInteger = false;

  /**
   * A JSON number as the double `JSON.parse` gives. Integers of up to 15 digits, and decimals
   * of up to 15 significant digits without an exponent, are exact as an integer divided by a
   * power of ten (both exact doubles, and IEEE division rounds correctly); the rest go
   * through `Number`, which rounds the same way `JSON.parse` does.
   */
  private number(): number {
    const b = this.b;
    const start = this.p;
    let i = start;
    const neg = b[i] === 45;
    if (neg) i++;
    let c = b[i];
    if (c === 48) {
      c = b[++i];
      if (c >= 48 && c <= 57) throw NOT_FAST; // a leading zero is not JSON
    } else if (!(c >= 49 && c <= 57)) {
      throw NOT_FAST;
    }
    let mantissa = 0;
    let digits = 0;
    let fraction = 0;
    let exponent = false;
    while (c >= 48 && c <= 57) {
      mantissa = mantissa * 10 + (c - 48);
      digits++;
      c = b[++i];
    }
    if (c === 46) {
      c = b[++i];
      if (!(c >= 48 && c <= 57)) throw NOT_FAST;
      while (c >= 48 && c <= 57) {
        mantissa = mantissa * 10 + (c - 48);
        digits++;
        fraction++;
        c = b[++i];
      }
    }
    if (c === 101 || c === 69) {
      exponent = true;
      c = b[++i];
      if (c === 43 || c === 45) c = b[++i];
      if (!(c >= 48 && c <= 57)) throw NOT_FAST;
      while (c >= 48 && c <= 57) c = b[++i];
    }
    this.p = i;
    if (!exponent && digits <= 15) {
      this.shortInteger = fraction === 0;
      const v = fraction === 0 ? mantissa : mantissa / POW10[fraction];
      return neg ? -v : v;
    }
    this.shortInteger = false;
    const v = Number(b.toString('latin1', start, i));
    if (!Number.isFinite(v)) throw NOT_FAST; // an overflow: the general path refuses it
    return v;
  }

  private expect(code: number): void {
    if (this.next() !== code) throw NOT_FAST;
  }

  private expectBytes(bytes: Uint8Array): void {
    this.skipSpace();
    if (!this.at(bytes)) throw NOT_FAST;
  }
}

/** 10^0 … 10^15, all exact doubles. */
const POW10 = Array.from({ length: 16 }, (_, i) => 10 ** i);
