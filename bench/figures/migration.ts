/**
 * Figures: operator migration of 1 KB, 100 KB and 1 MB sessions.
 *
 * A session is filled to the size with origin patches (at most 60,000 bytes
 * each, under MAX_PATCH_BYTES=65536), left one second for its snapshot, then
 * moved with `POST /__edge/sessions/:sid/migrate {"region":"apac"}`. Reported:
 * the `durationMs` the API answers (freeze → hand-over → switch, inside the old
 * object) and the wall time of the call from the bench (plus the Worker, the
 * lookup of the session, and HTTP).
 *
 * Stall: in separate repetitions, two loops run on the session while it
 * migrates, one reading (GET /) and one writing (an origin patch on every
 * request), each sending its next request when the last is answered. The
 * longest request that overlapped the migration is compared with the median
 * of the requests that did not.
 */
import { type AdminApi, Client, sleep } from "./client.ts";
import { max, median } from "./stats.ts";

const PATCH_BYTES = 60_000;

export const MIGRATION_SIZES = [
  { label: "1 KB", bytes: 1_000 },
  { label: "100 KB", bytes: 100_000 },
  { label: "1 MB", bytes: 1_000_000 },
] as const;

export interface MigrationSize {
  label: string;
  /** dataBytes of the sessions as the operator API reports them. */
  dataBytes: number;
  apiMs: number[];
  wallMs: number[];
  stall: { maxMs: number; outsideP50Ms: number; during: number; outside: number; failed: number }[];
  problems: string[];
}

/** A session holding about `bytes` of data, its snapshot written. */
async function filled(edge: string, bytes: number): Promise<Client> {
  const c = new Client(edge);
  await c.ok("/");
  for (let i = 0, left = bytes; left > 0; i++, left -= PATCH_BYTES)
    await c.ok(`/?fill=${Math.min(PATCH_BYTES, left)}&key=k${i}`);
  await sleep(1200);
  return c;
}

async function migrateOnce(admin: AdminApi, c: Client, problems: string[]) {
  const sid = String(c.claims().sid);
  const r = await admin.migrate(sid, "apac");
  if (r.json.status !== "migrated") problems.push(`${sid}: migrate answered ${JSON.stringify(r.json)}`);
  return { apiMs: Number(r.json.durationMs), wallMs: r.ms };
}

interface Sample {
  start: number;
  end: number;
  ms: number;
  ok: boolean;
}

async function stallOnce(admin: AdminApi, c: Client, problems: string[]) {
  const samples: Sample[] = [];
  let stop = false;
  const loop = async (writer: boolean) => {
    const own = new Client(c.base);
    own.cookie = c.cookie;
    for (let i = 0; !stop; i++) {
      const start = performance.now();
      const r = await own.request("/", writer ? { reply: { "x-edge-session-set": JSON.stringify({ w: i }) } } : {});
      samples.push({ start, end: r.at, ms: r.ms, ok: r.status === 200 });
    }
  };
  const loops = [loop(false), loop(true)];
  await sleep(1500);
  const from = performance.now();
  await migrateOnce(admin, c, problems);
  const to = performance.now();
  await sleep(1000);
  stop = true;
  await Promise.all(loops);
  const during = samples.filter((s) => s.end >= from && s.start <= to);
  const outside = samples.filter((s) => s.end < from || s.start > to);
  return {
    maxMs: max(during.map((s) => s.ms)),
    outsideP50Ms: median(outside.map((s) => s.ms)),
    during: during.length,
    outside: outside.length,
    failed: samples.filter((s) => !s.ok).length,
  };
}

export async function migrationFigures(
  edge: string,
  admin: AdminApi,
  o: { repetitions: number; stallRepetitions: number },
): Promise<MigrationSize[]> {
  const out: MigrationSize[] = [];
  for (const size of MIGRATION_SIZES) {
    const f: MigrationSize = { label: size.label, dataBytes: 0, apiMs: [], wallMs: [], stall: [], problems: [] };
    for (let rep = 0; rep < o.repetitions; rep++) {
      const c = await filled(edge, size.bytes);
      const sid = String(c.claims().sid);
      f.dataBytes = Number((await admin.session(sid)).json.dataBytes);
      const m = await migrateOnce(admin, c, f.problems);
      f.apiMs.push(m.apiMs);
      f.wallMs.push(m.wallMs);
      const after = (await admin.session(sid)).json;
      if (after.region !== "apac" || after.epoch !== 2 || after.dataBytes !== f.dataBytes)
        f.problems.push(`${sid}: after migration ${JSON.stringify({ ...after, audit: undefined })}`);
    }
    for (let rep = 0; rep < o.stallRepetitions; rep++)
      f.stall.push(await stallOnce(admin, await filled(edge, size.bytes), f.problems));
    out.push(f);
  }
  return out;
}
