// Owns the `errorPolicy` section of the configuration: per error class overrides of the built-in
// policy (src/errors/policy.ts), for every destination and route, or for one of them. Only the
// classes that reach the warehouse are configurable; decode-side classes are decided by the router.
import { z } from 'zod';
import { ErrorClasses, type ErrorClass } from './classes.ts';

/** Classes decided before any insert (dead-lettered or held by the router); not configurable here. */
export const routerClasses: readonly ErrorClass[] = [ErrorClasses.decode, ErrorClasses.oversized, ErrorClasses.unknownTeam, ErrorClasses.noDestination, ErrorClasses.destinationDown];
export const configurableClasses = Object.values(ErrorClasses).filter((c) => !routerClasses.includes(c)) as [ErrorClass, ...ErrorClass[]];

export const fallbacks = ['deadLetter', 'pauseDestination', 'drop', 'stop'] as const;
export type Fallback = (typeof fallbacks)[number];
export const actions = ['retry', 'split', 'isolate', 'bisect'] as const;
export type PolicyAction = (typeof actions)[number];

export const classOverrideSchema = z
  .object({
    /**
     * First response: back off and retry, split the rows into smaller inserts, isolate bad rows, or
     * bisect to tell a bad row (dead-lettered) from a failing destination (backed off, then `then`).
     */
    action: z.enum(actions).optional(),
    baseMs: z.number().int().positive().optional(),
    factor: z.number().min(1).optional(),
    capMs: z.number().int().positive().optional(),
    /** Attempts (including the first) before `then`; unlimited when neither limit is set. */
    maxAttempts: z.number().int().positive().optional(),
    maxElapsedMs: z.number().int().positive().optional(),
    then: z.enum(fallbacks).optional(),
    /** While a destination is paused, its failing batch is probed every (up to) pauseMs. */
    pauseMs: z.number().int().positive().optional(),
  })
  .strict()
  .refine((o) => o.baseMs === undefined || o.capMs === undefined || o.capMs >= o.baseMs, { message: 'capMs must be at least baseMs' });

export type ClassOverride = z.output<typeof classOverrideSchema>;

// Keys are checked even when a value has issues too (`when`), so every problem is reported at once.
const classMap = z.record(z.string(), classOverrideSchema).superRefine(
  (map, ctx) => {
    for (const key of Object.keys(map)) {
      if ((configurableClasses as string[]).includes(key)) continue;
      const hint = routerClasses.includes(key as ErrorClass) ? ' (decided by the router, not configurable)' : '';
      ctx.addIssue({ code: 'custom', path: [key], message: `unknown error class "${key}"${hint}; one of ${configurableClasses.join(', ')}` });
    }
  },
  { when: () => true },
);

export type ClassOverrides = Readonly<Partial<Record<ErrorClass, ClassOverride>>>;

export const errorPolicySchema = z
  .object({
    defaults: classMap.default({}),
    /** By destination id. */
    destinations: z.record(z.string(), classMap).default({}),
    /** By route name (`topic->table` unless the route names itself). */
    routes: z.record(z.string(), classMap).default({}),
  })
  .strict()
  .default({ defaults: {}, destinations: {}, routes: {} });

export type ErrorPolicyConfig = z.output<typeof errorPolicySchema>;

/** Cross-checks against the rest of the config: every named destination and route must exist. */
export function errorPolicyIssues(policy: ErrorPolicyConfig, destinations: readonly string[], routes: readonly string[]): string[] {
  const issues: string[] = [];
  for (const id of Object.keys(policy.destinations)) if (!destinations.includes(id)) issues.push(`errorPolicy.destinations.${id}: unknown destination "${id}"`);
  for (const name of Object.keys(policy.routes)) if (!routes.includes(name)) issues.push(`errorPolicy.routes.${name}: unknown route "${name}" (routes: ${routes.join(', ')})`);
  return issues;
}
