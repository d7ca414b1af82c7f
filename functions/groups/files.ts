/** Routes of the public API: the data folder over HTTP (embedded only). Each Lambda bundle holds only its own groups. */
import type { RouteSpec } from '../route-spec.ts';
import { fileRoute } from '../routes/files.ts';

export const routes: RouteSpec[] = [{ method: 'GET', path: '/files/{proxy+}', fn: fileRoute }];
