import type { z } from 'zod';
import { lazyObject, loadZod, parseYamlWithSchema } from '../util/yaml-config';

export type { YamlProblem } from '../util/yaml-config';

/** Authority, model and rule names: the characters MQTT topics and file names can carry. */
export const NAME_RE = /^[A-Za-z0-9_.-]{1,64}$/;
const AUTHORITY_RE = /^[A-Za-z0-9_-]{1,64}$/;
const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;
const ISO_TIME_RE = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/;

// Built on first use (zod loads then, not when the SDK is imported).
function buildPolicySchema() {
  const { z } = loadZod();
  const U32 = z.number().int().min(0).max(0xffff_ffff);

  const allowedModel = z.strictObject({
    name: z.string().regex(NAME_RE, 'a model name is 1-64 of [A-Za-z0-9_.-]'),
    digest: z.string().regex(DIGEST_RE, 'a digest is "sha256:" and 64 lowercase hex digits'),
    license: z.string().max(128).optional(),
  });

  const publisher = z.strictObject({
    name: z.string().regex(NAME_RE, 'a publisher name is 1-64 of [A-Za-z0-9_.-]'),
    /** SPKI PEM, 64 hex digits or base64 of the raw 32-byte Ed25519 key. */
    key: z.string().min(1),
  });

  const outputRule = z
    .strictObject({
      id: z.string().regex(NAME_RE, 'a rule id is 1-64 of [A-Za-z0-9_.-]').optional(),
      model: z.string().regex(/^(?:\*|[A-Za-z0-9_.-]{1,64})$/, 'a model name or "*"'),
      output: z
        .string()
        .regex(/^(?:\*|[^\s]{1,128})$/, 'an output name or "*"')
        .default('*'),
      labels: z
        .union([z.array(z.string().max(128)).max(65536), z.record(z.string().regex(/^\d+$/), z.string().max(128))])
        .optional(),
      blockedClasses: z.array(z.union([z.string().min(1), U32])).optional(),
      minConfidence: z.number().min(0).max(1).optional(),
      ratePerMinute: U32.optional(),
      burst: U32.min(1).optional(),
      redact: z.boolean().optional(),
      kill: z.boolean().optional(),
    })
    .superRefine((rule, ctx) => {
      const names = labelNames(rule.labels);
      rule.blockedClasses?.forEach((c, i) => {
        if (typeof c === 'string' && !names.has(c)) {
          ctx.addIssue({
            code: 'custom',
            path: ['blockedClasses', i],
            message: `class ${JSON.stringify(c)} is not in this rule's labels`,
          });
        }
      });
    });

  return z.strictObject({
    apiVersion: z.literal('edgewarden/v1'),
    kind: z.literal('Policy'),
    authority: z.string().regex(AUTHORITY_RE, 'an authority name is 1-64 of [A-Za-z0-9_-]'),
    version: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
    expires: z
      .string()
      .regex(ISO_TIME_RE, 'an ISO 8601 time such as 2027-12-31T00:00:00Z')
      .refine((s) => Number.isFinite(Date.parse(s)), 'not a valid time')
      .optional(),
    models: z
      .strictObject({
        unlisted: z.enum(['refuse', 'flag']).default('refuse'),
        allow: z.array(allowedModel).default([]),
        publishers: z.array(publisher).default([]),
      })
      .optional(),
    outputs: z.array(outputRule).default([]),
    provenance: z
      .strictObject({
        mode: z.enum(['batched', 'per-output']).optional(),
        checkpointEvery: U32.min(1).optional(),
        checkpointMs: U32.min(1).optional(),
        salted: z.boolean().optional(),
      })
      .optional(),
    audit: z
      .strictObject({
        durability: z.enum(['none', 'group', 'always']).optional(),
        retainDays: U32.optional(),
      })
      .optional(),
    telemetry: z
      .strictObject({
        heartbeatSeconds: U32.min(1).optional(),
        brokers: z
          .array(
            z.strictObject({
              url: z.string().regex(/^mqtts?:\/\/\S+$/, 'an mqtt:// or mqtts:// URL'),
              share: z.enum(['full', 'summary', 'none']),
            }),
          )
          .optional(),
      })
      .optional(),
  });
}

/** The schema of a policy document (YAML, as the owner writes it). */
export const policyDocumentSchema: ReturnType<typeof buildPolicySchema> = lazyObject(buildPolicySchema);

/** A validated policy document. */
export type PolicyDocument = z.output<typeof policyDocumentSchema>;
/** One `outputs` rule of a document. */
export type OutputRuleDocument = PolicyDocument['outputs'][number];

/** The class names of a rule's label map (list or index → name map). */
export function labelNames(labels: OutputRuleDocument['labels']): Map<string, number> {
  const out = new Map<string, number>();
  if (Array.isArray(labels)) {
    for (const [i, n] of labels.entries()) out.set(n, i);
  } else if (labels) for (const [i, n] of Object.entries(labels)) out.set(n, Number(i));
  return out;
}

/**
 * Parses YAML text and validates it with `schema`. A syntax error throws `EW_POLICY_YAML`, a
 * schema error `EW_POLICY_SCHEMA`; both name `file:line:column: key: what is wrong`, and
 * `details.problems` lists every problem.
 */
export function parseYaml<S extends z.ZodType>(text: string, schema: S, file = '<policy>'): z.output<S> {
  return parseYamlWithSchema(text, schema, { code: 'EW_POLICY_SCHEMA', syntaxCode: 'EW_POLICY_YAML', file });
}

/** Parses and validates a policy document; errors name key, line and column. */
export function parsePolicyDocument(text: string, file?: string): PolicyDocument {
  return parseYaml(text, policyDocumentSchema, file);
}
