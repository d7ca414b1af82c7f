/** A dependency-free SVG chart of a bench run: throughput against the baselines, and latencies. */

type Result = Record<string, number | string | boolean>;

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
}

export function renderChart(results: Result[], machine: string): string {
  const width = 760;
  const bars: { label: string; series: [string, number, string][] }[] = [];
  for (const r of results) {
    if (typeof r.rowsPerSec === 'number') {
      bars.push({
        label: String(r.scenario),
        series: [
          ['moonlink', r.rowsPerSec as number, '#2563eb'],
          ['floor', r.floorRowsPerSec as number, '#9ca3af'],
          ['duckdb', r.duckdbRowsPerSec as number, '#f59e0b'],
        ],
      });
    }
  }
  const lat = results.filter((r) => typeof r.p50Ms === 'number');
  const height = 90 + bars.length * 90 + 60 + lat.length * 70 + 30;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12" role="img" aria-labelledby="title">`,
    `<title id="title">Moonlink Serverless bench: throughput against the floor and DuckDB, and latencies</title>`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="20" y="28" font-size="16" font-weight="bold">Moonlink Serverless bench</text>`,
    `<text x="20" y="46" fill="#555">${esc(machine)}</text>`,
    `<text x="20" y="74" font-weight="bold">Throughput (rows/s; higher is better)</text>`,
  ];
  let y = 90;
  const maxRate = Math.max(1, ...bars.flatMap((b) => b.series.map((s) => s[1])));
  for (const b of bars) {
    out.push(`<text x="20" y="${y + 12}" font-weight="bold">${esc(b.label)}</text>`);
    b.series.forEach(([name, v, color], i) => {
      const w = Math.max(1, (v / maxRate) * 480);
      const yy = y + 18 + i * 22;
      out.push(`<text x="30" y="${yy + 13}">${name}</text>`);
      out.push(`<rect x="110" y="${yy}" width="${w.toFixed(1)}" height="16" fill="${color}"/>`);
      out.push(
        `<text x="${(116 + w).toFixed(1)}" y="${yy + 13}">${Math.round(v).toLocaleString('en-US')}</text>`,
      );
    });
    y += 90;
  }
  y += 20;
  out.push(`<text x="20" y="${y}" font-weight="bold">Latency (ms; lower is better)</text>`);
  y += 16;
  const maxMs = Math.max(1, ...lat.flatMap((r) => [r.p99Ms as number, (r.waitVisibleP99Ms as number) ?? 0]));
  for (const r of lat) {
    const rows: [string, number, string][] = [
      ['p50', r.p50Ms as number, '#2563eb'],
      ['p99', r.p99Ms as number, '#1e3a8a'],
    ];
    if (typeof r.waitVisibleP50Ms === 'number')
      rows.push(['wait=visible p50', r.waitVisibleP50Ms, '#10b981']);
    out.push(`<text x="20" y="${y + 12}" font-weight="bold">${esc(String(r.scenario))}</text>`);
    rows.forEach(([name, v, color], i) => {
      const w = Math.max(1, (v / maxMs) * 420);
      const yy = y + 16 + i * 18;
      out.push(`<text x="30" y="${yy + 11}">${esc(name)}</text>`);
      out.push(`<rect x="150" y="${yy}" width="${w.toFixed(1)}" height="13" fill="${color}"/>`);
      out.push(`<text x="${(156 + w).toFixed(1)}" y="${yy + 11}">${v}</text>`);
    });
    y += 22 + rows.length * 18;
  }
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
