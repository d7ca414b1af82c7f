/**
 * Tables are spread over writer groups (one ECS service each) by a hash of their name; the
 * read functions use the same hash to find the writer that owns a table.
 */
export function groupOf(table: string, groups: number): number {
  if (groups <= 1) return 0;
  let h = 0x811c9dc5;
  for (let i = 0; i < table.length; i++) {
    h ^= table.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % groups;
}

/** `http://writer-{group}.moonlink.internal:8081` → the owning writer's base URL. */
export function writerUrlFor(template: string, table: string, groups: number): string {
  return template.replace('{group}', String(groupOf(table, groups)));
}
