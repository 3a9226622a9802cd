import type { KeyObject } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { z } from 'zod';
import { EdgewardenError, isEdgewardenError } from '../errors';
import { keyIdOf, rawPublicKey, toPublicKey } from '../provenance/keys';
import { lazyObject, loadYaml, loadZod } from '../util/yaml-config';
import { parseYaml } from './document';

/** What an authority is to the device. */
export type AuthorityRole = 'owner' | 'fleet' | 'community';
/** The sections of a policy; each can require k of n authority signatures. */
export type SectionName = 'models' | 'outputs' | 'provenance' | 'audit' | 'telemetry';
export const SECTION_NAMES: readonly SectionName[] = ['models', 'outputs', 'provenance', 'audit', 'telemetry'];
const ROLES: readonly AuthorityRole[] = ['owner', 'fleet', 'community'];

/** One trusted authority key. */
export interface Authority {
  readonly name: string;
  readonly role: AuthorityRole;
  readonly publicKey: Uint8Array;
  readonly keyId: Uint8Array;
  readonly key: KeyObject;
}

/** How an authority is given: a name, a key (raw bytes, PEM or KeyObject) and optionally a role. */
export interface AuthorityInput {
  readonly name: string;
  readonly key: KeyObject | Uint8Array | string;
  /** Defaults to the name when it is owner/fleet/community, else community. */
  readonly role?: AuthorityRole;
}

const AUTHORITY_RE = /^[A-Za-z0-9_-]{1,64}$/;

// Built on first use (zod loads then, not when the SDK is imported).
function buildTrustSchema() {
  const { z } = loadZod();
  return z.strictObject({
    authorities: z
      .record(z.string().regex(AUTHORITY_RE), z.strictObject({ role: z.enum(['owner', 'fleet', 'community']) }))
      .optional(),
    thresholds: z
      .strictObject({
        models: z.number().int().min(1).optional(),
        outputs: z.number().int().min(1).optional(),
        provenance: z.number().int().min(1).optional(),
        audit: z.number().int().min(1).optional(),
        telemetry: z.number().int().min(1).optional(),
      })
      .optional(),
  });
}

/** The trust configuration file `home/policy/trust.yaml` (optional). */
export const trustDocumentSchema: ReturnType<typeof buildTrustSchema> = lazyObject(buildTrustSchema);

/**
 * The device's trust configuration: authority keys by name and role, and per section how many
 * distinct authorities must sign a policy for that section to take effect (k of n; default 1).
 */
export class TrustConfig {
  private readonly byKey = new Map<string, Authority>();
  private readonly byName = new Map<string, Authority>();
  readonly thresholds: Readonly<Record<SectionName, number>>;

  constructor(authorities: readonly AuthorityInput[], thresholds: Partial<Record<SectionName, number>> = {}) {
    for (const a of authorities) {
      if (!AUTHORITY_RE.test(a.name))
        throw new EdgewardenError('EW_POLICY_TRUST', `authority name ${JSON.stringify(a.name)}`);
      if (this.byName.has(a.name)) throw new EdgewardenError('EW_POLICY_TRUST', `authority ${a.name} listed twice`);
      let key: KeyObject;
      try {
        key = toPublicKey(a.key);
      } catch (cause) {
        throw new EdgewardenError('EW_POLICY_TRUST', `authority ${a.name}: not an Ed25519 public key`, { cause });
      }
      const publicKey = rawPublicKey(key);
      const keyId = keyIdOf(publicKey);
      const hex = Buffer.from(keyId).toString('hex');
      if (this.byKey.has(hex)) throw new EdgewardenError('EW_POLICY_TRUST', `authority ${a.name} reuses another's key`);
      const role = a.role ?? (ROLES.includes(a.name as AuthorityRole) ? (a.name as AuthorityRole) : 'community');
      const auth: Authority = { name: a.name, role, publicKey, keyId, key };
      this.byKey.set(hex, auth);
      this.byName.set(a.name, auth);
    }
    const t = {} as Record<SectionName, number>;
    for (const s of SECTION_NAMES) {
      const k = thresholds[s] ?? 1;
      if (!Number.isInteger(k) || k < 1) throw new EdgewardenError('EW_POLICY_TRUST', `threshold ${s}: ${k}`);
      if (k > 1 && k > this.byName.size) {
        throw new EdgewardenError(
          'EW_POLICY_TRUST',
          `threshold ${s}: ${k} of ${this.byName.size} authorities can never be met`,
        );
      }
      t[s] = k;
    }
    this.thresholds = Object.freeze(t);
  }

  /** The authority whose key has this keyid. */
  byKeyId(keyId: Uint8Array): Authority | undefined {
    return this.byKey.get(Buffer.from(keyId).toString('hex'));
  }

  /** The authority of this name. */
  get(name: string): Authority | undefined {
    return this.byName.get(name);
  }

  /** Every trusted authority, by name. */
  get authorities(): readonly Authority[] {
    return [...this.byName.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  get size(): number {
    return this.byName.size;
  }

  /**
   * Loads `dir/authorities/*.pub` (the file name is the authority name) and the optional
   * `dir/trust.yaml` (roles and thresholds). `dir` is a device home's `policy/` folder.
   */
  static async load(policyDir: string): Promise<TrustConfig> {
    let files: string[] = [];
    try {
      files = (await readdir(join(policyDir, 'authorities'))).filter((f) => f.endsWith('.pub')).sort();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new EdgewardenError('EW_POLICY_IO', `cannot read ${join(policyDir, 'authorities')}`, { cause: err });
      }
    }
    let doc: z.output<typeof trustDocumentSchema> = {};
    const trustFile = join(policyDir, 'trust.yaml');
    try {
      doc = parseYaml(await readFile(trustFile, 'utf8'), trustDocumentSchema, trustFile);
    } catch (err) {
      if (isEdgewardenError(err)) throw err;
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new EdgewardenError('EW_POLICY_IO', `cannot read ${trustFile}`, { cause: err });
      }
    }
    const inputs: AuthorityInput[] = [];
    for (const f of files) {
      const name = f.slice(0, -'.pub'.length);
      const role = doc.authorities?.[name]?.role;
      inputs.push({ name, key: await readFile(join(policyDir, 'authorities', f), 'utf8'), ...(role ? { role } : {}) });
    }
    for (const name of Object.keys(doc.authorities ?? {})) {
      if (!inputs.some((i) => i.name === name)) {
        throw new EdgewardenError(
          'EW_POLICY_TRUST',
          `${trustFile}: authority ${name} has no key authorities/${name}.pub`,
        );
      }
    }
    return new TrustConfig(inputs, doc.thresholds ?? {});
  }
}

/** Sets an authority's role in `policyDir/trust.yaml`, keeping the rest of the file. */
export async function writeTrustRole(policyDir: string, name: string, role: AuthorityRole): Promise<void> {
  const file = join(policyDir, 'trust.yaml');
  let text = '';
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const doc = loadYaml().parseDocument(text || '{}');
  doc.setIn(['authorities', name, 'role'], role);
  await writeFile(file, doc.toString());
}
