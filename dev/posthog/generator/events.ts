// Owns clickhouse_events_json: events built as strings by hand (about 4x faster than JSON.stringify
// of objects), each sized to a target drawn per event, with properties added in priority order and
// padded with custom ones until the message is close to that size.
import type { GeneratedMessage } from './topics.ts';
import { TOPICS } from './topics.ts';
import type { Rng } from './random.ts';
import { at, hash3 } from './random.ts';
import { hex8, stableUuid7, ts0, ts3, ts6, uuid7 } from './ids-and-times.ts';
import {
  BROWSERS,
  CLASSES,
  CUSTOM_KEYS,
  DEVICE_TYPES,
  GEO,
  GROUP_TYPES,
  HOSTS,
  LIBS,
  OSES,
  PATHS,
  PLANS,
  QUERIES,
  REFERRERS,
  SERVER_EVENTS,
  SERVER_LIBS,
  TAGS,
  TEXTS,
  WORDS,
  eventName,
} from './vocabulary.ts';
import type { World } from './world.ts';

const Q = '\\"'; // a double quote inside a JSON string inside JSON

function ps(key: string, value: string): string {
  return `${Q}${key}${Q}:${Q}${value}${Q}`;
}

function pn(key: string, value: number | boolean): string {
  return `${Q}${key}${Q}:${value}`;
}

/** Target message size: ~15% short events 550–1100 B, the rest bell-shaped around 1.5 KB, all ≤ 2000 B. */
function targetEventSize(rng: Rng): number {
  if (rng.chance(0.15)) return rng.range(550, 1100);
  const bell = (rng.float() + rng.float() + rng.float()) / 3; // mean 0.5, sd ~0.17
  return Math.min(2000, Math.round(1140 + bell * 800));
}

function elementsChain(rng: Rng): string {
  // PostHog's elements_chain: `tag.class1.class2:attr="v"nth-child="1"...;parent...`; contains quotes.
  const depth = rng.range(1, 4);
  const parts: string[] = [];
  for (let i = 0; i < depth; i++) {
    const tag = rng.pick(TAGS);
    const cls = rng.chance(0.7) ? `.${rng.pick(CLASSES)}` : '';
    const text = i === 0 && rng.chance(0.8) ? `text=\\"${rng.pick(TEXTS)}\\"` : '';
    const href = tag === 'a' ? `attr__href=\\"${rng.pick(PATHS)}\\"href=\\"${rng.pick(PATHS)}\\"` : '';
    parts.push(`${tag}${cls}:${href}attr__class=\\"${cls.slice(1)}\\"nth-child=\\"${rng.range(1, 9)}\\"nth-of-type=\\"${rng.range(1, 4)}\\"${text}`);
  }
  return parts.join(';');
}

export function* events(w: World, count: number): Generator<GeneratedMessage> {
  const rng = w.rng;
  const topic = TOPICS.events;
  for (let i = 0; i < count; i++, w.index++) {
    const now = w.now();
    const team = w.team();
    const user = rng.int(w.usersOf(team));
    const target = targetEventSize(rng);
    // Small events look like server-side captures: few properties, no elements, no groups.
    const server = target < 1150;
    const ts = now - rng.int(5000); // client clocks and batching: a little out of order
    const createdAt = now + rng.int(1500);
    const uuid = uuid7(ts, rng);
    const event = server ? rng.pick(SERVER_EVENTS) : eventName(rng);
    const distinctId = w.distinctId(team, user);
    const personId = w.personId(team, user);
    const sessionStart = ts - (ts % 1_800_000);
    const sessionId = stableUuid7(sessionStart, team, user, sessionStart / 1_800_000);
    const host = at(HOSTS, hash3(team, 0, 1) % HOSTS.length);
    const path = rng.pick(PATHS);
    const url = `https://${host}${path}${rng.pick(QUERIES)}`;
    const [browser, browserVersion] = at(BROWSERS, hash3(team, user, 2) % BROWSERS.length);
    const [os, osVersion] = at(OSES, hash3(team, user, 3) % OSES.length);
    const geo = at(GEO, hash3(team, user, 4) % GEO.length);
    const [lib, libVersion] = server ? at(SERVER_LIBS, hash3(team, 0, 5) % SERVER_LIBS.length) : at(LIBS, hash3(team, 0, 5) % LIBS.length);
    const groupCount = server ? 0 : hash3(team, 0, 6) % 3; // 0–2 group types per team
    const personMode = rng.chance(0.92) ? 'full' : rng.chance(0.8) ? 'propertyless' : 'force_upgrade';
    const elements = event === '$autocapture' || event === '$rageclick' ? elementsChain(rng) : '';
    const email = `user${user}@customer${team}.example.com`;

    // Outer fields (everything but properties).
    const personProperties = server
      ? `{${ps('email', email)}}`
      : `{${ps('email', email)},${ps('name', `${rng.pick(WORDS)} ${rng.pick(WORDS)}`)},${ps('$initial_browser', browser)},${ps('$initial_os', os)},${ps('$geoip_country_code', geo[0])}}`;
    let groupFields = '';
    const groupProps: string[] = [];
    for (let g = 0; g < groupCount; g++) {
      const n = user % (g === 0 ? 50 : 200);
      const key = w.groupKey(team, g, n);
      groupProps.push(ps(at(GROUP_TYPES, g), key));
      groupFields += `,"group${g}_properties":"{${ps('name', key)},${ps('plan', at(PLANS, n % PLANS.length))},${pn('seats', 1 + (n % 40))}}","group${g}_created_at":"${ts3(w.groupCreatedAt(team, g, n))}"`;
    }
    const head = `{"uuid":"${uuid}","event":"${event}","properties":"{`;
    const tail =
      `}","timestamp":"${ts6(ts, rng.int(1000))}","team_id":${team},"distinct_id":"${distinctId}","elements_chain":"${elements}",` +
      `"created_at":"${ts6(createdAt, rng.int(1000))}","person_id":"${personId}","person_properties":"${personProperties}",` +
      `"person_created_at":"${ts0(w.personCreatedAt(team, user))}"${groupFields},"person_mode":"${personMode}",` +
      `"project_id":${team},"captured_at":"${ts6(ts + rng.int(800), rng.int(1000))}"}`;

    // Properties: the core always, then optional ones in priority order while they fit the target.
    let body =
      `${ps('$lib', lib)},${ps('$lib_version', libVersion)},${ps('$insert_id', hex8(rng.u32()) + hex8(rng.u32()))},` +
      `${pn('$time', Math.floor(ts / 1000) + (ts % 1000) / 1000)},${ps('distinct_id', distinctId)},` +
      `${ps('$session_id', sessionId)},${ps('token', `phc_${hex8(hash3(team, 0, 14))}${hex8(hash3(team, 0, 15))}`)}`;
    if (groupCount > 0) {
      for (let g = 0; g < groupCount; g++) body += `,${ps(`$group_${g}`, w.groupKey(team, g, user % (g === 0 ? 50 : 200)))}`;
      body += `,${Q}$groups${Q}:{${groupProps.join(',')}}`;
    }
    let size = head.length + tail.length + body.length;
    const optional: string[] = [];
    if (event === '$feature_flag_called') {
      optional.push(ps('$feature_flag', `${rng.pick(WORDS)}-${rng.pick(WORDS)}`), ps('$feature_flag_response', rng.chance(0.5) ? 'test' : 'control'));
    }
    if (!server) {
      optional.push(
        ps('$window_id', stableUuid7(sessionStart + 1, team, user, 0x77)),
        ps('$current_url', url),
        ps('$host', host),
        ps('$pathname', path),
        ps('$os', os),
        ps('$os_version', osVersion),
        ps('$browser', browser),
        pn('$browser_version', Number.parseFloat(browserVersion)),
        ps('$device_type', at(DEVICE_TYPES, hash3(team, user, 10) % DEVICE_TYPES.length)),
        ps('$referrer', rng.pick(REFERRERS)),
        ps('$device_id', stableUuid7(ts - 86_400_000, team, user, 13)),
        pn('$screen_height', 900 + (hash3(team, user, 11) % 540)),
        pn('$screen_width', 1440 + (hash3(team, user, 12) % 1120)),
      );
    }
    optional.push(ps('$geoip_country_code', geo[0]), ps('$geoip_country_name', geo[1]), ps('$geoip_city_name', geo[2]), ps('$geoip_time_zone', geo[5]), ps('$geoip_continent_code', geo[8]));
    if (event === '$identify' || (!server && rng.chance(0.1))) {
      optional.push(`${Q}$set${Q}:{${ps('email', email)},${ps('plan', rng.pick(PLANS))}}`);
      optional.push(`${Q}$set_once${Q}:{${ps('$initial_referrer', rng.pick(REFERRERS))},${ps('$initial_current_url', url)}}`);
    }
    optional.push(ps('$geoip_subdivision_1_code', geo[3]), ps('$geoip_subdivision_1_name', geo[4]), pn('$geoip_latitude', Number(geo[6])), pn('$geoip_longitude', Number(geo[7])));
    for (const extra of optional) {
      if (size + extra.length + 1 > target) continue;
      body += `,${extra}`;
      size += extra.length + 1;
    }
    // Pad with custom properties (distinct keys) until the message is within 40 bytes of its target.
    let k = rng.int(CUSTOM_KEYS.length);
    for (let n = 0; target - size >= 40; n++, k++) {
      const key = n < CUSTOM_KEYS.length ? at(CUSTOM_KEYS, k % CUSTOM_KEYS.length) : `${rng.pick(WORDS)}_${n}`;
      const kind = rng.int(4);
      const extra =
        kind === 0
          ? pn(key, rng.int(100000))
          : kind === 1
            ? pn(key, rng.chance(0.5))
            : ps(key, rng.chance(0.5) ? `${rng.pick(WORDS)} ${rng.pick(WORDS)} ${rng.pick(WORDS)}` : `${rng.pick(WORDS)}-${hex8(rng.u32())}`);
      body += `,${extra}`;
      size += extra.length + 1;
    }
    yield w.message(topic, uuid, head + body + tail, team, uuid);
  }
}
