/**
 * `GET /health`: ready — 200 only when every table is open and undamaged and the log takes
 * writes; otherwise 503 listing what is wrong. `GET /health/live` (in api.ts) only says the
 * process answers: for supervisors that should not restart a process over a damaged table.
 * Where the writer is not in this process (Lambda), readiness is the function's own.
 */
import { type HttpEvent, type HttpResult, json } from '../http.ts';
import type { Services } from '../services.ts';

export async function healthRoute(_event: HttpEvent, s: Services): Promise<HttpResult> {
  const report = await s.writer.health?.();
  if (!report || report.ready) return json(200, { status: 'ok' });
  return json(503, {
    status: 'unavailable',
    problems: report.problems,
    error: {
      code: 'not_ready',
      message: `${report.problems.length} problem(s): ${report.problems
        .map((p) => `${p.table ?? p.component} ${p.state}`)
        .join(', ')}`,
    },
  });
}
