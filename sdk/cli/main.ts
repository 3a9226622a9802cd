#!/usr/bin/env node
// Bundling: importing the package root here makes every module this entry shares with the root
// part of the root's chunks, rather than a chunk per combination of entries; each ES module costs a
// device ~2 ms to load, and `edgewarden/warden` then loads two files instead of eleven.
import '../index';
import { Command } from 'commander';
import { SDK_VERSION } from '../version';
import { registerAgent } from './agent';
import { registerAudit } from './audit';
import { registerBench } from './bench';
import { registerDemo } from './demo';
import { registerDevice } from './device';
import { registerFleet } from './fleet';
import { registerKeys } from './keys';
import { registerLink } from './link';
import { registerPolicy } from './policy';
import { registerRun } from './run';
import { registerVerify } from './verify';

const program = new Command()
  .name('edgewarden')
  .description('Accountable local AI: signed provenance for every output, audit logs, policies, fleet heartbeats.')
  .version(SDK_VERSION)
  .showHelpAfterError()
  .exitOverride((err) => {
    // commander's own usage errors are bad input: exit 2 as the CLI contract says.
    process.exit(err.exitCode === 0 ? 0 : 2);
  });

for (const register of [
  registerKeys,
  registerRun,
  registerVerify,
  registerAudit,
  registerBench,
  registerAgent,
  registerFleet,
  registerPolicy,
  registerDevice,
  registerLink,
  registerDemo,
]) {
  register(program);
}

await program.parseAsync(process.argv);
