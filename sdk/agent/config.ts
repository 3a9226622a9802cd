import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { z } from 'zod';
import { EdgewardenError } from '../errors';
import { lazyObject, loadZod, parseYamlWithSchema } from '../util/yaml-config';

// Built on first use (zod loads then, not when the SDK is imported).
function buildSchemas() {
  const { z } = loadZod();
  const name = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'use 1-64 of A-Z a-z 0-9 _ -');
  const hexId = z.string().regex(/^[0-9a-fA-F]{4}$/, 'a USB id is 4 hex digits');

  const brokerSchema = z.strictObject({
    url: z.string().regex(/^(mqtts?|wss?|tcp|ssl):\/\/[^\s]+$/, 'an mqtt://, mqtts://, ws:// or wss:// URL'),
    share: z.enum(['full', 'summary', 'none']).default('full'),
    receipts: z.boolean().default(true),
    protocolVersion: z.union([z.literal(4), z.literal(5)]).default(4),
    ca: z.string().optional(),
    cert: z.string().optional(),
    key: z.string().optional(),
    username: z.string().optional(),
    password: z.string().optional(),
  });

  const linkSchema = z
    .strictObject({
      port: z.string().optional(),
      match: z.strictObject({ vendorId: hexId, productId: hexId }).optional(),
      baudRate: z.number().int().positive().default(921_600),
      /** The loaded model that runs on the MCU's audio windows (default: the first one). */
      model: name.optional(),
    })
    .refine((l) => (l.port === undefined) !== (l.match === undefined), 'give either port or match, not both');

  const agent = z.strictObject({
    home: z.string().default('/var/lib/edgewarden'),
    fleet: name,
    models: z.array(z.strictObject({ name, path: z.string().min(1) })).default([]),
    provenance: z
      .strictObject({
        mode: z.enum(['batched', 'per-output']).default('batched'),
        durability: z.enum(['always', 'group', 'none']).default('group'),
        checkpointEvery: z.number().int().positive().default(1000),
        checkpointMs: z.number().int().positive().default(5000),
        /** Audit-log retention in days (unset: keep everything); a policy's audit.retainDays can only lengthen it. */
        retainDays: z.number().positive().max(36_500).optional(),
      })
      .default({ mode: 'batched', durability: 'group', checkpointEvery: 1000, checkpointMs: 5000 }),
    heartbeat: z
      .strictObject({ intervalSeconds: z.number().positive().max(86_400).default(10) })
      .default({ intervalSeconds: 10 }),
    brokers: z.array(brokerSchema).default([]),
    /** Each broker's outbox keeps at most this many heartbeats; the oldest are dropped first and counted. */
    outbox: z
      .strictObject({ maxEntries: z.number().int().min(1).max(10_000_000).default(10_000) })
      .default({ maxEntries: 10_000 }),
    link: linkSchema.optional(),
  });
  return { agent, broker: brokerSchema };
}

let schemas: ReturnType<typeof buildSchemas> | undefined;
const built = () => {
  schemas ??= buildSchemas();
  return schemas;
};

/** The agent's YAML configuration, as validated. */
export const agentConfigSchema: ReturnType<typeof buildSchemas>['agent'] = lazyObject(() => built().agent);

export type AgentConfig = z.infer<typeof agentConfigSchema>;
export type BrokerConfig = z.infer<ReturnType<typeof buildSchemas>['broker']>;

/**
 * Reads and validates an agent configuration; relative paths (home, models, TLS files) are taken
 * from the config file's folder. Errors are `EW_AGENT_CONFIG` naming the key and line.
 */
export async function loadAgentConfig(path: string): Promise<AgentConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    throw new EdgewardenError('EW_AGENT_CONFIG', `cannot read agent config ${path}`, { cause });
  }
  return parseAgentConfig(text, path);
}

/** Validates agent configuration text; see {@link loadAgentConfig}. */
export function parseAgentConfig(text: string, file: string): AgentConfig {
  const cfg = parseYamlWithSchema(text, agentConfigSchema, { code: 'EW_AGENT_CONFIG', file });
  const base = dirname(resolve(file));
  const abs = (p: string | undefined) => (p === undefined ? undefined : resolve(base, p));
  return {
    ...cfg,
    home: resolve(base, cfg.home),
    models: cfg.models.map((m) => ({ ...m, path: resolve(base, m.path) })),
    brokers: cfg.brokers.map((b) => ({
      ...b,
      ...(b.ca ? { ca: abs(b.ca) } : {}),
      ...(b.cert ? { cert: abs(b.cert) } : {}),
      ...(b.key ? { key: abs(b.key) } : {}),
    })),
  };
}
