// Owns choosing the destinations provider from the config: the HTTP API when `destinationsApi` is
// set, otherwise the YAML config's own destinations and team map.
import type { Registry } from 'prom-client';
import type { Config } from '../../config/load.ts';
import type { Logger } from '../../telemetry/logger.ts';
import type { DestinationProvider } from '../provider.ts';
import { HttpDestinationProvider } from './http.ts';
import { StaticConfigProvider } from './static.ts';

export function createDestinationProvider(config: Config, deps: { logger: Logger; registry: Registry }): DestinationProvider {
  if (config.destinationsApi === undefined) return new StaticConfigProvider(config);
  const configHosts = config.destinations.map((d) => new URL(d.url).hostname);
  return new HttpDestinationProvider({ ...config.destinationsApi, configHosts }, deps);
}
