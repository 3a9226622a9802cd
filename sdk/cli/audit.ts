import type { Command } from 'commander';

/** Registers `edgewarden audit`. (Not yet implemented.) */
export function registerAudit(_program: Command): void {}
