import type { Command } from 'commander';
import { Agent } from '../agent/agent';
import { loadAgentConfig } from '../agent/config';
import { action, EXIT, emit } from './common';

/** Registers `edgewarden agent --config FILE`. */
export function registerAgent(program: Command): void {
  program
    .command('agent')
    .description('the long-running device process: models under the warden, policies, signed heartbeats')
    .requiredOption('--config <file>', 'agent configuration (YAML)')
    .option('--once', 'publish one heartbeat, print it, and exit')
    .option('--json', 'machine-readable output')
    .addHelpText(
      'after',
      '\nExamples:\n  edgewarden agent --config /etc/edgewarden/agent.yaml\n  edgewarden agent --config agent.yaml --once --json\n\nSIGTERM or Ctrl-C flushes the audit log and outboxes and sends a clean death.',
    )
    .action(
      action(async (opts: { config: string; once?: boolean; json?: boolean }) => {
        const config = await loadAgentConfig(opts.config);
        const agent = await Agent.start(config);
        if (opts.once) {
          const content = await agent.heartbeatContent();
          await agent.telemetry.publish(content);
          await agent.stop();
          emit(
            opts.json,
            { deviceId: agent.warden.deviceId, heartbeat: summarize(content) },
            () =>
              `device ${agent.warden.deviceId}: heartbeat published (${content.models?.length ?? 0} models, ${content.compliance?.state})`,
          );
          return EXIT.ok;
        }
        await new Promise<void>((resolve) => {
          const stop = (signal: string) => {
            process.stderr.write(`edgewarden agent: ${signal}, flushing and saying goodbye\n`);
            void agent.stop().then(resolve, resolve);
          };
          process.once('SIGTERM', () => stop('SIGTERM'));
          process.once('SIGINT', () => stop('SIGINT'));
        });
        return EXIT.ok;
      }),
    );
}

// JSON-friendly view of a heartbeat's content (bytes as hex).
function summarize(value: unknown): unknown {
  if (value instanceof Uint8Array) return Buffer.from(value).toString('hex');
  if (Array.isArray(value)) return value.map(summarize);
  if (value && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, summarize(v)]));
  return value;
}
