/**
 * A cursor over JSON bytes (UTF-8), shared by the two byte scanners: the request scanner
 * (txn/request-scanner.ts: a write's operations straight into columns) and the Kinesis record
 * codec (log/kinesis-records.ts: a record's members by byte range, without parsing values).
 * It steps over whitespace, strings and whole values; what a value means is the caller's.
 * A failure calls `fail`, which throws (a scanner that falls back to a general parser throws
 * its own sentinel).
 */

export class JsonScanError extends Error {}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const SCALAR = /^(?:-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)$/;

export function isJsonSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

export class JsonCursor {
  /** The position: the next byte to read. */
  p = 0;

  constructor(
    readonly b: Uint8Array,
    private readonly onFail: (what: string) => never = (what) => {
      throw new JsonScanError(what);
    },
  ) {}

  fail(what: string): never {
    return this.onFail(what);
  }

  skipSpace(): void {
    const b = this.b;
    let p = this.p;
    if (b[p] > 0x20) return; // the usual case: compact JSON
    // Past the end b[p] is undefined, which is no space: no bounds check in the hot loop.
    for (;;) {
      const c = b[p];
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) p++;
      else break;
    }
    this.p = p;
  }

  /** The next byte after whitespace (not consumed). */
  peek(): number {
    const c = this.b[this.p];
    if (c > 0x20) return c;
    this.skipSpace();
    return this.b[this.p];
  }

  /** The next byte after whitespace (consumed). */
  next(): number {
    const c = this.b[this.p];
    if (c > 0x20) {
      this.p++;
      return c;
    }
    this.skipSpace();
    return this.b[this.p++];
  }

  /** Whether these bytes come next; if so, steps over them. */
  at(bytes: Uint8Array): boolean {
    const b = this.b;
    const p = this.p;
    for (let i = 0; i < bytes.length; i++) if (b[p + i] !== bytes[i]) return false;
    this.p = p + bytes.length;
    return true;
  }

  /**
   * Steps over a string (the cursor is on its opening quote); whether it has escapes. Escapes
   * are not checked here (JSON.parse of the string does that); a control character fails.
   */
  stringEnd(): boolean {
    const b = this.b;
    const end = b.length;
    let escaped = false;
    for (let i = this.p + 1; i < end; i++) {
      const c = b[i];
      if (c === QUOTE) {
        this.p = i + 1;
        return escaped;
      }
      if (c === BACKSLASH) {
        escaped = true;
        i++; // the escaped character
      } else if (c < 0x20) this.fail('control character in string');
    }
    return this.fail('unterminated string');
  }

  /** Steps over one value of any kind (containers by matching brackets; scalars checked). */
  skipValue(): void {
    const b = this.b;
    if (this.p >= b.length) this.fail('value expected');
    const c = b[this.p];
    if (c === QUOTE) {
      this.stringEnd();
      return;
    }
    if (c === 0x7b || c === 0x5b) {
      const stack: number[] = [];
      while (this.p < b.length) {
        const d = b[this.p];
        if (d === QUOTE) {
          this.stringEnd();
          continue;
        }
        if (d === 0x7b || d === 0x5b) stack.push(d === 0x7b ? 0x7d : 0x5d);
        else if (d === 0x7d || d === 0x5d) {
          if (stack.pop() !== d) this.fail('mismatched bracket');
          if (stack.length === 0) {
            this.p++;
            return;
          }
        }
        this.p++;
      }
      this.fail('unterminated object or array');
    }
    let j = this.p;
    while (j < b.length && !isJsonSpace(b[j]) && b[j] !== 0x2c && b[j] !== 0x7d && b[j] !== 0x5d) j++;
    if (!SCALAR.test(Buffer.from(b.buffer, b.byteOffset + this.p, j - this.p).toString('latin1')))
      this.fail('invalid value');
    this.p = j;
  }
}
