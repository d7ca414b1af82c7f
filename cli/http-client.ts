/**
 * The CLI's HTTP client: the service URL, a bearer token or SigV4 signing (`--aws`, for the
 * deployed HTTP API: service `execute-api`, credentials from the default AWS chain), and retries
 * of refusals only — 429 and 503 are answers that applied nothing, so they are retried after
 * `Retry-After`; anything else is an error with the server's message.
 */
import { createHash, createHmac } from 'node:crypto';
import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { SignatureV4 } from '@smithy/signature-v4';

export interface ClientOptions {
  url: string;
  token?: string;
  aws?: { region: string };
  /** Attempts for 429/503 answers (default 120). */
  maxRetries?: number;
  /** Told before each wait after a refusal. */
  onRetry?: (status: number, waitMs: number) => void;
}

export class ServiceError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** True when the request may have been applied (the answer was lost, not a refusal). */
    readonly unknownOutcome = false,
  ) {
    super(message);
  }
}

function bytesOf(v: string | ArrayBuffer | ArrayBufferView): string | Uint8Array {
  if (typeof v === 'string') return v;
  if (v instanceof ArrayBuffer) return new Uint8Array(v);
  return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

class Sha256 {
  private hash;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.hash = secret ? createHmac('sha256', bytesOf(secret)) : createHash('sha256');
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.hash.update(bytesOf(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.hash.digest());
  }
  reset(): void {}
}

/** Region of an API Gateway URL (`https://id.execute-api.eu-west-1.amazonaws.com`), else AWS_REGION. */
export function regionOf(url: string): string {
  return (
    /\.execute-api\.([a-z0-9-]+)\.amazonaws\.com/.exec(url)?.[1] ??
    process.env.AWS_REGION ??
    process.env.AWS_DEFAULT_REGION ??
    'us-east-1'
  );
}

export class Client {
  private readonly signer: SignatureV4 | undefined;

  constructor(readonly o: ClientOptions) {
    this.signer = o.aws
      ? new SignatureV4({ service: 'execute-api', region: o.aws.region, credentials: defaultProvider(), sha256: Sha256 })
      : undefined;
  }

  private async headersFor(method: string, url: URL, headers: Record<string, string>, body?: Uint8Array) {
    const h: Record<string, string> = { ...headers };
    if (this.o.token) h.authorization = `Bearer ${this.o.token}`;
    if (!this.signer) return h;
    const query: Record<string, string> = {};
    for (const [k, v] of url.searchParams) query[k] = v;
    const signed = await this.signer.sign({
      method,
      protocol: url.protocol,
      hostname: url.hostname,
      port: url.port ? Number(url.port) : undefined,
      path: url.pathname,
      query,
      headers: { ...h, host: url.host },
      body,
    });
    return signed.headers as Record<string, string>;
  }

  /** One request; refusals (429, 503) are retried. Returns the response body bytes. */
  async request(
    method: string,
    path: string,
    body?: Uint8Array,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; bytes: Uint8Array; headers: Headers }> {
    const url = new URL(path, this.o.url.endsWith('/') ? this.o.url : `${this.o.url}/`);
    const max = this.o.maxRetries ?? 120;
    for (let attempt = 0; ; attempt++) {
      let res: Response;
      try {
        res = await fetch(url, {
          method,
          headers: await this.headersFor(method, url, headers, body),
          body: body as Uint8Array<ArrayBuffer> | undefined,
        });
      } catch (e) {
        const code = (e as { cause?: { code?: string } }).cause?.code;
        // Refused before anything was sent: safe to try again; otherwise the outcome is unknown.
        if ((code === 'ECONNREFUSED' || code === 'ENOTFOUND') && attempt < 5) {
          await new Promise((r) => setTimeout(r, 500 * (attempt + 1)));
          continue;
        }
        throw new ServiceError(0, `${method} ${url.pathname}: ${(e as Error).message}${code ? ` (${code})` : ''}`, body !== undefined && code !== 'ECONNREFUSED');
      }
      const bytes = new Uint8Array(await res.arrayBuffer());
      if ((res.status === 429 || res.status === 503) && attempt < max) {
        const after = Number(res.headers.get('retry-after') ?? '1');
        const wait = Math.min(Number.isFinite(after) && after > 0 ? after * 1000 : 1000, 30_000);
        this.o.onRetry?.(res.status, wait);
        await new Promise((r) => setTimeout(r, wait));
        continue;
      }
      if (res.status >= 400) throw new ServiceError(res.status, `${method} ${url.pathname}: ${res.status} ${errorText(bytes)}`);
      return { status: res.status, bytes, headers: res.headers };
    }
  }

  async json(method: string, path: string, body?: unknown): Promise<any> {
    const bytes = body === undefined ? undefined : new TextEncoder().encode(JSON.stringify(body));
    const r = await this.request(method, path, bytes, body === undefined ? {} : { 'content-type': 'application/json' });
    const text = new TextDecoder().decode(r.bytes);
    return text ? JSON.parse(text) : undefined;
  }
}

function errorText(bytes: Uint8Array): string {
  const text = new TextDecoder().decode(bytes);
  try {
    const e = JSON.parse(text) as { error?: { code?: string; message?: string } };
    if (e.error?.message) return `${e.error.code ? `${e.error.code}: ` : ''}${e.error.message}`;
  } catch {}
  return text.slice(0, 500);
}
