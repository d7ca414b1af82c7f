/**
 * `npm run repair -- --table T [--skip-damaged] [--data-dir DIR]`: inspects, and with
 * `--skip-damaged` repairs, a table whose local log is damaged (see lib/log/log-repair.ts).
 * Run it with the service stopped: it takes the data folder's lock. Without `--skip-damaged`
 * it only prints what it found and what a repair would give up (exit 3 when damaged). It prints
 * one JSON report; the repair is also recorded in the table's `log/<table>/repairs.json`.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { repairLog } from '../log/log-repair.ts';
import { DirLockedError, lockDir } from '../util/dir-lock.ts';

const USAGE = 'usage: npm run repair -- --table T [--skip-damaged] [--data-dir DIR]';

let args: ReturnType<typeof parse>;
function parse() {
  return parseArgs({
    options: {
      table: { type: 'string' },
      'skip-damaged': { type: 'boolean', default: false },
      'data-dir': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
}
try {
  args = parse();
} catch (e) {
  console.error(`${(e as Error).message}\n${USAGE}`);
  process.exit(2);
}
if (args.values.help || !args.values.table) {
  console.error(USAGE);
  process.exit(args.values.help ? 0 : 2);
}
const dataDir = path.resolve(args.values['data-dir'] ?? process.env.MOONLINK_DATA_DIR ?? './data');
let unlock: () => Promise<void>;
try {
  unlock = await lockDir(dataDir, { waitMs: 0 });
} catch (e) {
  if (e instanceof DirLockedError) {
    console.error(`${e.message}: stop the service before repairing`);
    process.exit(1);
  }
  throw e;
}
try {
  const report = await repairLog(path.join(dataDir, 'log'), args.values.table, {
    skipDamaged: args.values['skip-damaged'],
  });
  console.log(JSON.stringify(report, null, 2));
  if (!report.damage) console.error(`table "${args.values.table}": the log is not damaged; nothing to do`);
  else if (report.repaired)
    console.error(
      `table "${args.values.table}": repaired; ${report.recordsKept} intact records kept, LSNs given up: ${
        report.skipped.map((s) => (s.from === s.to ? s.from : `${s.from}-${s.to}`)).join(', ') || 'none'
      }; the damaged segments are kept in ${report.keptIn}`,
    );
  else {
    console.error(
      `table "${args.values.table}": the log is damaged (${report.damage.reason} at ${report.damage.segment} offset ${report.damage.offset}); run again with --skip-damaged to give up the LSNs listed under "skipped"`,
    );
    process.exitCode = 3;
  }
} finally {
  await unlock();
}
