/** Routes of the public API: snapshots, scans and leases (the read function on AWS). Each Lambda bundle holds only its own groups. */
import type { RouteSpec } from '../route-spec.ts';
import { scanRoute } from '../routes/scan.ts';
import { releaseLeaseRoute, snapshotRoute } from '../routes/snapshot.ts';

export const routes: RouteSpec[] = [
  { method: 'GET', path: '/tables/{name}/snapshot', fn: snapshotRoute },
  { method: 'GET', path: '/tables/{name}/rows', fn: scanRoute },
  { method: 'DELETE', path: '/leases/{id}', fn: releaseLeaseRoute },
];
