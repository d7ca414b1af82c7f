/** Routes of the public API: health, liveness and the OpenAPI document (the tables function on AWS). Each Lambda bundle holds only its own groups. */
import { json } from '../http.ts';
import { OPENAPI } from '../openapi.ts';
import type { RouteSpec } from '../route-spec.ts';
import { healthRoute } from '../routes/health.ts';

export const routes: RouteSpec[] = [
  { method: 'GET', path: '/health', fn: healthRoute },
  { method: 'GET', path: '/health/live', fn: async () => json(200, { status: 'alive' }) },
  { method: 'GET', path: '/openapi.json', fn: async () => json(200, OPENAPI) },
];
