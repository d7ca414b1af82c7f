/**
 * Finds the first object in a JSON text that names a key twice (`JSON.parse` keeps the last
 * silently). One pass, no recursion: a stack of the key sets of the open objects. Keys are
 * compared as decoded (`"a"` and `"\u0061"` are the same key). Assumes the text is JSON; on
 * malformed text it stops without a finding and leaves the error to the parser.
 */
export interface DuplicateKey {
  key: string;
  /** Character offset of the second occurrence. */
  offset: number;
}

export function firstDuplicateKey(text: string): DuplicateKey | undefined {
  // One entry per open object or array: a Set for objects, null for arrays.
  const stack: (Set<string> | null)[] = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // A string: find its end, honouring escapes.
      const start = i;
      let escaped = false;
      for (i++; i < text.length; i++) {
        const d = text.charCodeAt(i);
        if (d === 0x5c) {
          escaped = true;
          i++;
        } else if (d === 0x22) break;
      }
      if (i >= text.length) return undefined;
      if (expectKey) {
        const raw = text.slice(start, i + 1);
        let key: string;
        try {
          key = escaped ? (JSON.parse(raw) as string) : raw.slice(1, -1);
        } catch {
          return undefined;
        }
        const keys = stack[stack.length - 1];
        if (keys) {
          if (keys.has(key)) return { key, offset: start };
          keys.add(key);
        }
        expectKey = false;
      }
      continue;
    }
    if (c === 0x7b) {
      stack.push(new Set());
      expectKey = true;
    } else if (c === 0x5b) {
      stack.push(null);
      expectKey = false;
    } else if (c === 0x7d || c === 0x5d) {
      stack.pop();
      expectKey = false;
    } else if (c === 0x2c) {
      expectKey = stack[stack.length - 1] instanceof Set;
    }
  }
  return undefined;
}
