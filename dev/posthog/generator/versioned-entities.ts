// Owns the versioned topics, clickhouse_person, clickhouse_person_distinct_id and clickhouse_groups:
// each message creates an entity or is an update (the next version) of one seen recently, so the
// stream has the repeated ids and rising versions PostHog's own has.
import type { GeneratedMessage } from './topics.ts';
import { TOPICS } from './topics.ts';
import { at, hash3 } from './random.ts';
import { ts0 } from './ids-and-times.ts';
import { BROWSERS, GEO, OSES, PLANS, WORDS } from './vocabulary.ts';
import type { World } from './world.ts';

interface Recent {
  team: number;
  a: number;
  b: number;
  version: number;
}

/** Versioned entities seen so far; `pick` updates a recent one or creates one (a repeat becomes an update). */
class Entities {
  readonly all = new Map<string, Recent>();
  readonly recent: Recent[] = [];
  pick(w: World, reuse: number, fresh: (team: number) => Recent): Recent {
    const rng = w.rng;
    if (this.recent.length > 0 && rng.chance(reuse)) {
      const entity = at(this.recent, rng.int(this.recent.length));
      entity.version++;
      return entity;
    }
    const made = fresh(w.team());
    const id = `${made.team}/${made.a}/${made.b}`;
    const known = this.all.get(id);
    if (known !== undefined) {
      known.version++;
      return known;
    }
    this.all.set(id, made);
    if (this.recent.length < 5000) this.recent.push(made);
    else this.recent[rng.int(this.recent.length)] = made;
    return made;
  }
}

export function* person(w: World, count: number): Generator<GeneratedMessage> {
  const rng = w.rng;
  const entities = new Entities();
  for (let i = 0; i < count; i++, w.index++) {
    const p = entities.pick(w, 0.35, (team) => ({ team, a: rng.int(w.usersOf(team)), b: 0, version: 0 }));
    const id = w.personId(p.team, p.a);
    const properties: Record<string, string | number | boolean> = {
      email: `user${p.a}@customer${p.team}.example.com`,
      name: `${rng.pick(WORDS)} ${rng.pick(WORDS)}`,
      plan: rng.pick(PLANS),
      $initial_browser: at(BROWSERS, hash3(p.team, p.a, 2) % BROWSERS.length)[0],
      $initial_os: at(OSES, hash3(p.team, p.a, 3) % OSES.length)[0],
      $geoip_city_name: at(GEO, hash3(p.team, p.a, 4) % GEO.length)[2],
      login_count: p.version + 1,
    };
    const value = JSON.stringify({
      id,
      created_at: ts0(w.personCreatedAt(p.team, p.a)),
      properties: JSON.stringify(properties),
      team_id: p.team,
      is_identified: rng.chance(0.6) ? 1 : 0,
      is_deleted: rng.chance(0.01) ? 1 : 0,
      version: p.version,
    });
    yield w.message(TOPICS.person, null, value, p.team, `${id}@${p.version}`);
  }
}

export function* personDistinctId(w: World, count: number): Generator<GeneratedMessage> {
  const rng = w.rng;
  const entities = new Entities();
  for (let i = 0; i < count; i++, w.index++) {
    // An update re-points a distinct id to another person (a merge) with a higher version.
    const p = entities.pick(w, 0.2, (team) => {
      const user = rng.int(w.usersOf(team));
      return { team, a: user, b: user, version: 0 };
    });
    if (p.version > 0) p.b = rng.int(w.usersOf(p.team));
    const distinctId = w.distinctId(p.team, p.a);
    const value = JSON.stringify({
      person_id: w.personId(p.team, p.b),
      team_id: p.team,
      distinct_id: distinctId,
      version: p.version,
      is_deleted: rng.chance(0.01) ? 1 : 0,
    });
    yield w.message(TOPICS.personDistinctId, null, value, p.team, `${p.team}/${distinctId}@${p.version}`);
  }
}

export function* groups(w: World, count: number): Generator<GeneratedMessage> {
  const rng = w.rng;
  const entities = new Entities();
  for (let i = 0; i < count; i++, w.index++) {
    const g = entities.pick(w, 0.4, (team) => {
      const typeIndex = rng.chance(0.7) ? 0 : rng.range(1, 4);
      return { team, a: typeIndex, b: rng.int(typeIndex === 0 ? 50 : 200), version: 0 };
    });
    const key = w.groupKey(g.team, g.a, g.b);
    const properties = {
      name: key,
      plan: at(PLANS, (g.b + g.version) % PLANS.length),
      seats: 1 + ((g.b * 7 + g.version) % 400),
      industry: rng.pick(WORDS),
      created_via: rng.chance(0.5) ? 'posthog-js' : 'api',
    };
    const value = JSON.stringify({
      group_type_index: g.a,
      group_key: key,
      team_id: g.team,
      group_properties: JSON.stringify(properties),
      created_at: ts0(w.groupCreatedAt(g.team, g.a, g.b)),
      version: g.version,
    });
    yield w.message(TOPICS.groups, null, value, g.team, `${g.team}/${g.a}/${key}@${g.version}`);
  }
}
