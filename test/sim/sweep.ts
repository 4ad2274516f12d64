// A command over the seeded simulation, for sweeps and post-mortems beyond what the test runs:
//   node test/sim/sweep.ts [--first 1] [--count 1500] [--throwing] [--stop-at-first]
//     prints every failing seed with its first violations, then a summary line (exit 1 if any failed)
//   node test/sim/sweep.ts --trace SEED [--throwing] [--grep TEXT]
//     prints one seed's scenario, violations and trace (the lines holding TEXT)
import { parseArgs } from 'node:util';
import { simulate } from './driver.ts';

const { values } = parseArgs({
  options: {
    first: { type: 'string', default: '1' },
    count: { type: 'string', default: '1500' },
    throwing: { type: 'boolean', default: false },
    'stop-at-first': { type: 'boolean', default: false },
    trace: { type: 'string' },
    grep: { type: 'string' },
  },
});
const throwing = values.throwing ? { throwingKafkaClients: true } : {};

if (values.trace !== undefined) {
  const result = await simulate({ seed: Number(values.trace), trace: true, ...throwing });
  const grep = values.grep;
  const lines = grep === undefined ? result.trace : result.trace.filter((l) => l.includes(grep));
  process.stdout.write(`${result.scenario}\n${result.violations.map((v) => `[${v.invariant}] ${v.message}`).join('\n')}\n${lines.join('\n')}\n`);
} else {
  const first = Number(values.first);
  const count = Number(values.count);
  const started = Date.now();
  let failed = 0;
  for (let seed = first; seed < first + count; seed++) {
    const result = await simulate({ seed, ...throwing });
    if (result.violations.length === 0) continue;
    failed++;
    process.stdout.write(
      `seed ${seed}: ${result.violations
        .slice(0, 3)
        .map((v) => `[${v.invariant}] ${v.message.slice(0, 300)}`)
        .join(' | ')}\n`,
    );
    if (values['stop-at-first']) break;
  }
  process.stdout.write(`seeds ${first}..${first + count - 1}: ${failed} failed, ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
  process.exitCode = failed > 0 ? 1 : 0;
}
