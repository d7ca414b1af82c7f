/** A route of the public API: method, path, handler, and whether middy parses its JSON body. */
import type { HttpEvent, HttpResult } from './http.ts';
import type { Services } from './services.ts';

export type RouteFn = (event: HttpEvent, s: Services) => Promise<HttpResult>;

export interface RouteSpec {
  method: 'GET' | 'POST' | 'DELETE' | 'HEAD';
  path: string;
  fn: RouteFn;
  /**
   * The body goes through middy's JSON body parser. Not for writes: their routes parse exactly
   * (a JSON number beyond 2^53 must keep its digits).
   */
  jsonBody?: true;
}
