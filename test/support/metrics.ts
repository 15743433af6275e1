/** Reading Prometheus text expositions in tests, and scraping one repeatedly during load. */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Samples of a text exposition (comments skipped; label values without escapes are enough). */
export function parseExposition(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not an exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="([^"]*)"/g)) {
      labels[l[1]!] = l[2]!;
    }
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** The value of the one sample matching name and labels (undefined when there is none). */
export function valueOf(
  samples: Sample[],
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  const found = samples.filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  if (found.length > 1)
    throw new Error(`${found.length} samples match ${name} ${JSON.stringify(labels)}`);
  return found[0]?.value;
}

export interface PoolScrape {
  worker: string;
  open: number;
  busy: number;
  idle: number;
}

/**
 * Scrapes `url` every `everyMs` until stopped and keeps, per scrape and worker, the pool gauges.
 * Bounded: at most `max` scrapes.
 */
export function scrapeLoop(
  url: string,
  opts: { everyMs?: number; max?: number; headers?: Record<string, string> } = {},
): { count(): number; stop(): Promise<PoolScrape[]> } {
  const scrapes: PoolScrape[] = [];
  let running = true;
  const loop = (async () => {
    for (let n = 0; running && n < (opts.max ?? 2000); n++) {
      const res = await fetch(url, { headers: opts.headers });
      if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
      const samples = parseExposition(await res.text());
      const workers = new Set(
        samples.filter((s) => s.name === 'keel_db_connections_open').map((s) => s.labels.worker!),
      );
      for (const worker of workers) {
        scrapes.push({
          worker,
          open: valueOf(samples, 'keel_db_connections_open', { worker }) ?? NaN,
          busy: valueOf(samples, 'keel_db_connections_busy', { worker }) ?? NaN,
          idle: valueOf(samples, 'keel_db_connections_idle', { worker }) ?? NaN,
        });
      }
      await new Promise((r) => setTimeout(r, opts.everyMs ?? 25));
    }
  })();
  return {
    /** Scrapes so far (one per worker the exposition names). */
    count: () => scrapes.length,
    async stop() {
      running = false;
      await loop;
      return scrapes;
    },
  };
}

/** Scrapes where the pool's gauges disagree with each other or go negative. */
export function inconsistent(scrapes: PoolScrape[]): PoolScrape[] {
  return scrapes.filter(
    (s) => s.busy + s.idle !== s.open || s.busy < 0 || s.idle < 0 || !Number.isFinite(s.open),
  );
}
