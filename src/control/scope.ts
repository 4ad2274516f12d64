// Owns the vocabulary of pause scopes shared by the control plane (who sets pauses, cluster-wide)
// and the pipeline (which lanes stop inserting). A scope names what must go quiet.

export type PauseScope =
  | { readonly kind: 'all' }
  | { readonly kind: 'route'; readonly route: string }
  /** A table across routes: `database.table`, or `table` in any database. */
  | { readonly kind: 'table'; readonly table: string }
  | { readonly kind: 'destination'; readonly destination: string }
  | { readonly kind: 'team'; readonly team: number };

export interface Pause {
  readonly id: string;
  readonly scope: PauseScope;
  readonly reason: string;
  readonly by: string;
  /** Milliseconds since the epoch. */
  readonly at: number;
}

/** What a row is, for matching against scopes. */
export interface RowScope {
  readonly route: string;
  readonly database: string;
  readonly table: string;
  readonly destination: string;
  readonly team: number | undefined;
}

export function scopeMatches(scope: PauseScope, row: RowScope): boolean {
  switch (scope.kind) {
    case 'all':
      return true;
    case 'route':
      return scope.route === row.route;
    case 'table':
      return scope.table === row.table || scope.table === `${row.database}.${row.table}`;
    case 'destination':
      return scope.destination === row.destination;
    case 'team':
      return scope.team === row.team;
  }
}

/** Does a lane (all teams of one route → destination) possibly hold rows in scope? */
export function scopeTouchesLane(scope: PauseScope, lane: Omit<RowScope, 'team'>): boolean {
  return scope.kind === 'team' || scopeMatches(scope, { ...lane, team: undefined });
}

export function scopeKey(scope: PauseScope): string {
  switch (scope.kind) {
    case 'all':
      return 'all';
    case 'route':
      return `route:${scope.route}`;
    case 'table':
      return `table:${scope.table}`;
    case 'destination':
      return `destination:${scope.destination}`;
    case 'team':
      return `team:${scope.team}`;
  }
}
