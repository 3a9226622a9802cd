import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { EdgewardenError } from '../errors';
import { exportAudit, verifyAuditExport, verifyAuditLog } from '../provenance/audit-verify';
import { rawPublicKey, TrustStore, toPublicKey } from '../provenance/keys';
import { action, EXIT, emit, paint, resolveHome } from './common';
import { createProgress, type Progress } from './progress';

interface AuditOptions {
  home?: string;
  trust?: string;
  out?: string;
  json?: boolean;
}

async function devicePublicKeyPem(home: string): Promise<string> {
  const path = join(home, 'keys', 'device.pub');
  try {
    return await readFile(path, 'utf8');
  } catch (cause) {
    throw new EdgewardenError(
      'EW_PROVENANCE_KEY_FILE',
      `${path} is missing; is ${home} a device home? (create one with 'edgewarden keys init --home DIR')`,
      { cause, details: { path } },
    );
  }
}

/** Registers `edgewarden audit verify` and `edgewarden audit export`. */
export function registerAudit(program: Command): void {
  const audit = program.command('audit').description("check or export the device's tamper-evident audit log");
  audit
    .command('verify')
    .description('verify the audit log of a home (or an export file): CRCs, hash chain, signed checkpoints')
    .argument('[export]', "an export file from 'edgewarden audit export' (default: the log in --home)")
    .option('--home <dir>', 'device home (default $EDGEWARDEN_HOME, then ~/.edgewarden)')
    .option('--trust <pubkey-or-dir>', "key(s) the checkpoints must be signed by (default: the home's device.pub)")
    .option('--json', 'machine-readable output')
    .addHelpText(
      'after',
      `
Exit status: 0 intact, 1 damaged (the first damaged index is printed), 2 bad usage or unreadable files.

Examples:
  $ edgewarden audit verify --home ./home
  $ edgewarden audit verify audit-export.bin --trust device.pub --json`,
    )
    .action(
      action(async (exportFile: string | undefined, opts: AuditOptions) => {
        let report: Awaited<ReturnType<typeof verifyAuditLog>>;
        let source: string;
        if (exportFile !== undefined) {
          source = resolve(exportFile);
          let bytes: Uint8Array;
          try {
            bytes = await readFile(exportFile);
          } catch (cause) {
            throw new EdgewardenError('EW_CLI_INPUT', `cannot read ${exportFile}`, {
              cause,
              details: { path: source },
            });
          }
          const trust = opts.trust ? await TrustStore.fromPath(opts.trust) : undefined;
          report = verifyAuditExport(bytes, trust ? { trust } : {});
        } else {
          const home = resolveHome(opts.home);
          source = join(home, 'audit');
          if (!existsSync(source)) {
            throw new EdgewardenError('EW_CLI_INPUT', `${source} does not exist; is ${home} a device home?`, {
              details: { path: source },
            });
          }
          const trust = opts.trust
            ? await TrustStore.fromPath(opts.trust)
            : new TrustStore([await devicePublicKeyPem(home)]);
          // A bar on a terminal for big logs (one step per segment file); silent when piped or --json.
          let bar: Progress | undefined;
          report = await verifyAuditLog(source, {
            trust,
            onSegment: (done, total) => {
              bar ??= createProgress({ label: 'verifying audit segments', total, json: opts.json === true });
              bar.update(done);
            },
          });
          bar?.done();
        }
        const ok = report.ok;
        emit(opts.json, { source, ...report }, () => {
          const torn = report.tornTail
            ? ` (a torn tail was dropped after a crash: ${JSON.stringify(report.tornTail)})`
            : '';
          if (ok) {
            const kept =
              report.base > 0
                ? `records ${report.base}..${report.size - 1} (the ${report.base} before them were removed by retention)`
                : `${report.size} records`;
            return `${paint(process.stdout, 'green', 'intact')}: ${kept}, ${report.checkpoints} checkpoints${torn}`;
          }
          const d = report.damage;
          return (
            `${paint(process.stdout, 'red', `damaged at index ${d?.index}`)}: ${d?.code} ${d?.message}\n` +
            'entries before this index verify; this one and what follows were altered or lost. Keep the log as evidence.'
          );
        });
        return ok ? EXIT.ok : EXIT.failedCheck;
      }),
    );
  audit
    .command('export')
    .description("write an auditor's export: every record, every checkpoint and the device public key")
    .option('--home <dir>', 'device home (default $EDGEWARDEN_HOME, then ~/.edgewarden)')
    .requiredOption('--out <file>', 'where to write the export (protobuf AuditExport)')
    .option('--json', 'machine-readable output')
    .addHelpText(
      'after',
      `
Examples:
  $ edgewarden audit export --home ./home --out audit-export.bin
  $ edgewarden audit verify audit-export.bin --trust ./home/keys/device.pub`,
    )
    .action(
      action(async (opts: AuditOptions) => {
        const home = resolveHome(opts.home);
        const pub = rawPublicKey(toPublicKey(await devicePublicKeyPem(home)));
        const bytes = await exportAudit(join(home, 'audit'), pub);
        await writeFile(opts.out as string, bytes);
        emit(
          opts.json,
          { out: resolve(opts.out as string), bytes: bytes.length },
          `wrote ${opts.out} (${bytes.length} bytes); an auditor checks it with: edgewarden audit verify ${opts.out} --trust device.pub`,
        );
        return EXIT.ok;
      }),
    );
}
