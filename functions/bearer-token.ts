/**
 * The embedded service's and `npm run local`'s API token (`MOONLINK_API_TOKEN`): required
 * whenever the server listens beyond loopback, sent as `Authorization: Bearer <token>` and
 * compared in constant time (both sides hashed to 32 bytes first, so lengths tell nothing).
 * On AWS, API Gateway's IAM authorization takes this place.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

/** Whether a listen address only accepts connections from this machine. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** Refuses to serve beyond loopback without a token. */
export function requireTokenBeyondLoopback(host: string, token: string | undefined): void {
  if (!isLoopback(host) && !token)
    throw new Error(
      `HOST=${host} accepts connections from other machines: set MOONLINK_API_TOKEN (clients send "Authorization: Bearer <token>")`,
    );
}

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/** A checker of Authorization headers against the token. */
export function bearerCheck(token: string): (authorization: string | undefined) => boolean {
  const expected = digest(token);
  return (authorization) => {
    const m = /^Bearer (.+)$/i.exec(authorization ?? '');
    return timingSafeEqual(digest(m ? m[1].trim() : ''), expected) && m !== null;
  };
}
