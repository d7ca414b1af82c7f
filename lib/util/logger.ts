/**
 * Structured JSON logs, one object per line, shaped like AWS Powertools' (`level`, `message`,
 * `timestamp`, `service`, plus keys). `LOG_LEVEL` (DEBUG, INFO, WARN, ERROR, SILENT) sets the floor.
 * Never log request bodies, rows or connection strings: see {@link redact}.
 */
export type LogLevel = 'DEBUG' | 'INFO' | 'WARN' | 'ERROR' | 'SILENT';

const ORDER: Record<LogLevel, number> = { DEBUG: 10, INFO: 20, WARN: 30, ERROR: 40, SILENT: 100 };

export interface Logger {
  debug(message: string, extra?: Record<string, unknown>): void;
  info(message: string, extra?: Record<string, unknown>): void;
  warn(message: string, extra?: Record<string, unknown>): void;
  error(message: string, extra?: Record<string, unknown>): void;
  child(keys: Record<string, unknown>): Logger;
}

function levelFromEnv(): LogLevel {
  const v = (process.env.LOG_LEVEL ?? process.env.POWERTOOLS_LOG_LEVEL ?? 'INFO').toUpperCase();
  return v in ORDER ? (v as LogLevel) : 'INFO';
}

/** Replaces passwords in connection strings and secret-looking keys. */
export function redact(value: unknown): unknown {
  if (typeof value === 'string')
    return value.replace(/(\/\/[^:/@\s]+:)[^@\s]+@/g, '$1***@').replace(/(password=)[^\s&;]+/gi, '$1***');
  if (value instanceof Error) return { name: value.name, message: redact(value.message), stack: value.stack };
  if (Array.isArray(value)) return value.map(redact);
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      out[k] = /password|secret|token|authorization|connection/i.test(k) ? '***' : redact(v);
    }
    return out;
  }
  return value;
}

export class JsonLogger implements Logger {
  constructor(
    private readonly keys: Record<string, unknown> = { service: 'moonlink' },
    private readonly level: LogLevel = levelFromEnv(),
    private readonly write: (line: string) => void = (l) => process.stdout.write(`${l}\n`),
  ) {}

  private log(level: LogLevel, message: string, extra?: Record<string, unknown>): void {
    if (ORDER[level] < ORDER[this.level]) return;
    const entry = {
      level,
      message,
      timestamp: new Date().toISOString(),
      ...this.keys,
      ...(extra ? (redact(extra) as object) : {}),
    };
    this.write(JSON.stringify(entry, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)));
  }

  debug(message: string, extra?: Record<string, unknown>): void {
    this.log('DEBUG', message, extra);
  }
  info(message: string, extra?: Record<string, unknown>): void {
    this.log('INFO', message, extra);
  }
  warn(message: string, extra?: Record<string, unknown>): void {
    this.log('WARN', message, extra);
  }
  error(message: string, extra?: Record<string, unknown>): void {
    this.log('ERROR', message, extra);
  }
  child(keys: Record<string, unknown>): Logger {
    return new JsonLogger({ ...this.keys, ...keys }, this.level, this.write);
  }
}

export const silentLogger: Logger = new JsonLogger({}, 'SILENT');
