import type { AttributedRule } from './compose';

/** Which rule (and authority) set a merged value. */
export interface RuleSource {
  readonly ruleId: string;
  readonly authority: string;
}

/** Every output rule that applies to one model output, merged into the strictest check. */
export interface MergedOutputRule {
  readonly model: string;
  readonly output: string;
  readonly kill?: RuleSource;
  /** Blocked class index → the rule that blocked it first, and its label when one was given. */
  readonly blocked: ReadonlyMap<number, RuleSource & { label?: string }>;
  /** The largest confidence floor. */
  readonly minConfidence?: RuleSource & { value: number };
  /** The smallest rate (and burst). */
  readonly rate?: RuleSource & { perMinute: number; burst: number };
  readonly redact?: RuleSource;
  /** Ids of every rule that took part. */
  readonly rules: readonly RuleSource[];
}

const applies = (pattern: string, name: string) => pattern === '*' || pattern === name;

/**
 * Merges the rules that apply to `model`/`output` (either may be "*" in a rule; pass "*" to get
 * only the wildcard rules): blocked classes union, the largest confidence floor, the smallest rate
 * and burst, and any redact or kill. The first rule (authorities in name order) wins a tie.
 */
export function mergeOutputRules(rules: readonly AttributedRule[], model: string, output: string): MergedOutputRule {
  const blocked = new Map<number, RuleSource & { label?: string }>();
  let kill: RuleSource | undefined;
  let minConfidence: (RuleSource & { value: number }) | undefined;
  let rate: (RuleSource & { perMinute: number; burst: number }) | undefined;
  let redact: RuleSource | undefined;
  const used: RuleSource[] = [];
  for (const { rule, authority } of rules) {
    const modelOk = model === '*' ? rule.model === '*' : applies(rule.model, model);
    const outputOk = output === '*' ? rule.output === '*' : applies(rule.output, output);
    if (!modelOk || !outputOk) continue;
    const src = { ruleId: rule.id, authority };
    used.push(src);
    if (rule.kill && !kill) kill = src;
    for (const c of rule.blockedClasses) {
      if (!blocked.has(c)) {
        const label = rule.labels.find((l) => l.index === c)?.name;
        blocked.set(c, label === undefined ? src : { ...src, label });
      }
    }
    if (rule.minConfidence !== undefined && (!minConfidence || rule.minConfidence > minConfidence.value)) {
      minConfidence = { ...src, value: rule.minConfidence };
    }
    if (rule.ratePerMinute !== undefined) {
      const perMinute = rule.ratePerMinute;
      const burst = Math.max(1, rule.burst ?? perMinute);
      if (!rate || perMinute < rate.perMinute)
        rate = { ...src, perMinute, burst: Math.min(burst, rate?.burst ?? burst) };
      else rate = { ...rate, burst: Math.min(rate.burst, burst) };
    }
    if (rule.redact && !redact) redact = src;
  }
  return {
    model,
    output,
    ...(kill ? { kill } : {}),
    blocked,
    ...(minConfidence ? { minConfidence } : {}),
    ...(rate ? { rate } : {}),
    ...(redact ? { redact } : {}),
    rules: used,
  };
}
