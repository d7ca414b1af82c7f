/**
 * Runs `npm start`'s entry point (or `npm run local`'s) as a child process (so it can be
 * SIGKILLed) on a free port.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export interface ServiceProcess {
  url: string;
  child: ChildProcess;
  output: () => string;
  kill(signal?: NodeJS.Signals): Promise<number | null>;
}

const ROOT = path.resolve(import.meta.dirname, '..', '..');

export async function startServiceProcess(
  env: Record<string, string>,
  timeoutMs = 30_000,
  options: { openFileLimit?: number; entry?: 'start' | 'local' | 'api'; args?: string[] } = {},
): Promise<ServiceProcess> {
  const port = await freePort();
  const extra = (process.env.SERVICE_NODE_ARGS ?? '').split(' ').filter(Boolean);
  // The same node flags as `npm start`.
  const main =
    options.entry === 'local'
      ? path.join(ROOT, 'localstack', 'local-main.ts')
      : options.entry === 'api'
        ? path.join(ROOT, 'localstack', 'api-main.ts')
        : path.join(ROOT, 'lib', 'main.ts');
  const args = ['--max-semi-space-size=64', ...extra, '--import', 'tsx', main, ...(options.args ?? [])];
  // With a file-descriptor limit, through a shell that sets it (`ulimit -n`) and then execs node.
  const [cmd, argv] =
    options.openFileLimit === undefined
      ? [process.execPath, args]
      : [
          '/bin/sh',
          ['-c', `ulimit -n ${options.openFileLimit} && exec "$0" "$@"`, process.execPath, ...args],
        ];
  const child = spawn(cmd, argv, {
    cwd: ROOT,
    // As `npm start` runs it (package.json): large buffers straight from mmap, so freed memory
    // goes back to the system (README, "Memory").
    env: {
      ...process.env,
      MALLOC_MMAP_THRESHOLD_: '131072',
      LOG_LEVEL: 'WARN',
      ...env,
      PORT: String(port),
      HOST: '127.0.0.1',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group, so a kill reaches the whole group, as a supervisor's would.
    detached: true,
  });
  let out = '';
  child.stdout?.on('data', (d) => {
    // SERVICE_OUT=FILE keeps all the service's stdout (e.g. with SERVICE_NODE_ARGS=--trace-gc).
    if (process.env.SERVICE_OUT) appendFileSync(process.env.SERVICE_OUT, d);
    out += d;
    if (out.length > 200_000) out = out.slice(-100_000);
  });
  child.stderr?.on('data', (d) => {
    out += d;
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`service exited with ${child.exitCode}:\n${out}`);
    try {
      const r = await fetch(`${url}/health/live`);
      if (r.ok) break;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`service did not start in ${timeoutMs} ms:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url,
    child,
    output: () => out,
    kill: async (signal = 'SIGKILL') => {
      if (child.exitCode === null && child.pid) {
        try {
          process.kill(-child.pid, signal);
        } catch {
          child.kill(signal);
        }
      }
      return exited;
    },
  };
}
