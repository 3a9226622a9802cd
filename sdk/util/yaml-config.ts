import { createRequire } from 'node:module';
import type * as YamlModule from 'yaml';
import type { Node } from 'yaml';
import type * as ZodModule from 'zod';
import type { z } from 'zod';
import { EdgewardenError } from '../errors';

// zod (~60 ms) and yaml (~35 ms) are loaded on first use, not at import: a program that only runs
// models through the warden never parses YAML or validates a config, and its cold start should not
// pay for them. `require` keeps every API that uses them synchronous.
const requireHere = createRequire(import.meta.url);
let zodModule: typeof ZodModule | undefined;
let yamlModule: typeof YamlModule | undefined;

/** The `zod` module, loaded on first use. */
export function loadZod(): typeof ZodModule {
  zodModule ??= requireHere('zod') as typeof ZodModule;
  return zodModule;
}

/** The `yaml` module, loaded on first use. */
export function loadYaml(): typeof YamlModule {
  yamlModule ??= requireHere('yaml') as typeof YamlModule;
  return yamlModule;
}

/**
 * An object built by `build` on its first use: the exported zod schemas are lazy so that importing
 * the SDK does not load zod. Property reads, `in`, key listing and prototype checks all reach the
 * built object, so the value behaves as the schema itself.
 */
export function lazyObject<T extends object>(build: () => T): T {
  let real: T | undefined;
  const get = (): T => {
    real ??= build();
    return real;
  };
  return new Proxy({} as T, {
    get: (_t, p) => Reflect.get(get(), p, get()),
    set: (_t, p, v) => Reflect.set(get(), p, v),
    has: (_t, p) => Reflect.has(get(), p),
    ownKeys: () => Reflect.ownKeys(get()),
    getOwnPropertyDescriptor: (_t, p) => {
      const d = Reflect.getOwnPropertyDescriptor(get(), p);
      // The proxy's own (empty) target cannot report a non-configurable property.
      return d ? { ...d, configurable: true } : undefined;
    },
    getPrototypeOf: () => Reflect.getPrototypeOf(get()),
    defineProperty: (_t, p, d) => Reflect.defineProperty(get(), p, d),
    deleteProperty: (_t, p) => Reflect.deleteProperty(get(), p),
  });
}

/** Where a problem is in a YAML text. */
export interface YamlProblem {
  readonly path: string;
  readonly line: number;
  readonly column: number;
  readonly message: string;
}

/**
 * Parses YAML and validates it with a zod schema. Any problem throws `code` with a message
 * `FILE:LINE:COL: key.path: what is wrong`, and every problem in `details.problems`.
 */
export function parseYamlWithSchema<S extends z.ZodType>(
  text: string,
  schema: S,
  options: { code: string; file?: string },
): z.infer<S> {
  const { LineCounter, parseDocument } = loadYaml();
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  const file = options.file ?? '<yaml>';
  const fail = (problems: YamlProblem[]): never => {
    const first = problems[0]!;
    const more = problems.length > 1 ? ` (and ${problems.length - 1} more)` : '';
    throw new EdgewardenError(
      options.code,
      `${file}:${first.line}:${first.column}: ${first.path || '(document)'}: ${first.message}${more}`,
      { details: { file, problems } },
    );
  };
  if (doc.errors.length > 0) {
    fail(
      doc.errors.map((e) => {
        const pos = e.linePos?.[0] ?? { line: 1, col: 1 };
        return { path: '', line: pos.line, column: pos.col, message: e.message.split('\n')[0] ?? e.message };
      }),
    );
  }
  const result = schema.safeParse(doc.toJS({ maxAliasCount: 100 }));
  if (result.success) return result.data;
  fail(
    result.error.issues.map((issue) => {
      // An unknown key is reported at the key itself, not at the map that holds it.
      const extra = issue.code === 'unrecognized_keys' ? issue.keys.slice(0, 1) : [];
      const path = [...issue.path, ...extra].map((p) => (typeof p === 'symbol' ? String(p) : p));
      const offset = nearestNodeOffset(doc.contents as Node | null, path);
      const pos = lines.linePos(offset);
      return { path: path.join('.'), line: pos.line, column: pos.col, message: issue.message };
    }),
  );
  throw new Error('unreachable');
}

// The offset of the deepest node that exists along `path` (a missing key points at its parent map).
function nearestNodeOffset(root: Node | null, path: readonly (string | number)[]): number {
  const { isMap, isSeq } = loadYaml();
  let node: Node | null = root;
  let offset = node?.range?.[0] ?? 0;
  for (const key of path) {
    let next: Node | null = null;
    if (isMap(node)) {
      const pair = node.items.find((p) => (p.key as { value?: unknown } | null)?.value === key);
      if (pair) {
        offset = (pair.key as Node | null)?.range?.[0] ?? offset;
        next = (pair.value as Node | null) ?? null;
      }
    } else if (isSeq(node) && typeof key === 'number') {
      next = (node.items[key] as Node | undefined) ?? null;
      if (next?.range) offset = next.range[0];
    }
    if (!next) break;
    node = next;
  }
  return offset;
}
