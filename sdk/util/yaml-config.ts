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
  /** The key path, e.g. `outputs[0].minConfidence` (empty for the document or a syntax error). */
  readonly key: string;
  readonly line: number;
  readonly column: number;
  readonly message: string;
}

/**
 * Parses YAML text and validates it with a zod schema. A syntax error throws `syntaxCode` (default
 * `code`), a schema error `code`; both say `file:line:column: key: what is wrong`, and
 * `details.problems` lists every problem.
 */
export function parseYamlWithSchema<S extends z.ZodType>(
  text: string,
  schema: S,
  options: { code: string; syntaxCode?: string; file?: string },
): z.output<S> {
  const { LineCounter, parseDocument } = loadYaml();
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  const file = options.file ?? '<yaml>';
  const syntaxCode = options.syntaxCode ?? options.code;
  const fail = (code: string, problems: YamlProblem[]): never => {
    const p = problems[0]!;
    const more = problems.length > 1 ? ` (and ${problems.length - 1} more)` : '';
    throw new EdgewardenError(code, `${file}:${p.line}:${p.column}: ${p.key || '(document)'}: ${p.message}${more}`, {
      details: { file, key: p.key, line: p.line, column: p.column, problems },
    });
  };
  if (doc.errors.length > 0) {
    fail(
      syntaxCode,
      doc.errors.map((e) => {
        const pos = e.linePos?.[0] ?? lines.linePos(e.pos[0]);
        return { key: '', line: pos.line, column: pos.col, message: e.message.split('\n')[0] ?? e.message };
      }),
    );
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 100 });
  } catch (cause) {
    throw new EdgewardenError(syntaxCode, `${file}: ${(cause as Error).message}`, { cause });
  }
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  return fail(
    options.code,
    result.error.issues.map((issue) => {
      // An unknown key is reported at the key itself, not at the map holding it.
      const extra = issue.code === 'unrecognized_keys' ? issue.keys.slice(0, 1) : [];
      const path = [...issue.path, ...extra].map((p) => (typeof p === 'symbol' ? String(p) : p));
      const pos = lines.linePos(offsetOf(doc.contents as Node | null, path));
      return { key: formatKey(path), line: pos.line, column: pos.col, message: issue.message };
    }),
  );
}

/** `outputs[0].minConfidence` */
export function formatKey(path: readonly (string | number)[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? p : `.${p}`;
  return out;
}

// Offset of what `path` names: the key of a map entry, the item of a sequence, or the deepest
// existing ancestor when part of the path is missing (a required key that is absent).
function offsetOf(root: Node | null, path: readonly (string | number)[]): number {
  const { isMap, isPair, isScalar, isSeq } = loadYaml();
  let node: Node | null = root;
  let offset = node?.range?.[0] ?? 0;
  for (const seg of path) {
    if (isMap(node)) {
      const pair = node.items.find((it) => isPair(it) && isScalar(it.key) && String(it.key.value) === String(seg));
      if (!pair) return offset;
      offset = (pair.key as Node).range?.[0] ?? offset;
      node = (pair.value as Node | null) ?? null;
    } else if (isSeq(node) && typeof seg === 'number') {
      const item = node.items[seg] as Node | undefined;
      if (!item) return offset;
      offset = item.range?.[0] ?? offset;
      node = item;
    } else {
      return offset;
    }
  }
  return offset;
}
